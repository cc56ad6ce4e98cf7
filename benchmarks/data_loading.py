"""Data loading speed of geoft's generic datamodules (samples per second), on generated and real chips.

    .venv/bin/python benchmarks/data_loading.py [--out results.json] [--workers 0] [--epochs 3]

:func:`benchmark_geoft` is the geoft side; a reference (TerraTorch) comparison can call the same cases
(:func:`benchmark_cases`) with its own datamodules.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import from_origin

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@dataclass
class Case:
    """A dataset to load: the datamodule class and its arguments."""

    name: str
    datamodule: str  # "segmentation" | "classification"
    init_args: dict[str, Any]


@dataclass
class Result:
    case: str
    samples: int
    chip: str
    setup_s: float
    samples_per_s: float
    first_batch_s: float
    epochs: int
    batch_size: int
    num_workers: int


def _write_chips(root: Path, n: int, size: int, bands: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split in ("images", "labels"):
        (root / split).mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", crs="EPSG:32633", dtype="int16", compress="deflate", tiled=True)
    for i in range(n):
        t = from_origin(500000 + i * size * 30, 5000000, 30, 30)
        with rasterio.open(
            root / "images" / f"c{i:04d}.tif",
            "w",
            width=size,
            height=size,
            count=bands,
            transform=t,
            **profile,
        ) as dst:
            dst.write(rng.integers(0, 10000, (bands, size, size), dtype=np.int16))
        with rasterio.open(
            root / "labels" / f"c{i:04d}.tif",
            "w",
            width=size,
            height=size,
            count=1,
            transform=t,
            **{**profile, "dtype": "uint8"},
        ) as dst:
            dst.write(rng.integers(0, 5, (1, size, size), dtype=np.uint8))


def benchmark_cases(work: Path, real_root: Path | None = REAL, n_chips: int = 64) -> list[Case]:
    """Generated chips (demo data, 6-band 224x224 chips) and, where present, the real samples."""
    from geoft.datasets import generate_demo_dataset

    demo = generate_demo_dataset(work / "demo", n_train=n_chips, n_val=0, n_test=0, size=64)
    _write_chips(work / "big", n_chips, 224, 6)
    means = {"means": [0.0] * 6, "stds": [1.0] * 6}
    cases = [
        Case("demo 64x64 (synthetic)", "segmentation", {**demo.datamodule_init_args()}),
        Case(
            "generated 224x224 int16",
            "segmentation",
            {
                "num_classes": 5,
                "train_data_root": str(work / "big" / "images"),
                "train_label_data_root": str(work / "big" / "labels"),
                **means,
            },
        ),
    ]
    if real_root is not None and (real_root / "sen1floods11_sample").is_dir():
        cases.append(
            Case(
                "Sen1Floods11 S2 512x512 (real, 1 chip)",
                "segmentation",
                {
                    "num_classes": 2,
                    "train_data_root": str(real_root / "sen1floods11_sample"),
                    "img_grep": "*_S2Hand.tif",
                    "label_grep": "*_LabelHand.tif",
                    "ignore_index": -1,
                    "no_data_replace": 0,
                    "means": [0.0] * 13,
                    "stds": [1.0] * 13,
                },
            )
        )
        cases.append(
            Case(
                "BigEarthNet band folders 120x120 (real, 6)",
                "classification",
                {
                    "num_classes": 1,
                    "class_names": ["any"],
                    "train_data_root": str(real_root / "bigearthnet_s2_example"),
                    "img_grep": "S2*",
                    "band_file_pattern": "*_{band}.tif",
                    "dataset_bands": [
                        "B01",
                        "B02",
                        "B03",
                        "B04",
                        "B05",
                        "B06",
                        "B07",
                        "B08",
                        "B8A",
                        "B09",
                        "B11",
                        "B12",
                    ],
                    "train_labels_file": str(_ben_labels(real_root, work)),
                    "means": [0.0] * 12,
                    "stds": [1.0] * 12,
                },
            )
        )
    return cases


def _ben_labels(real_root: Path, work: Path) -> Path:
    path = work / "ben_labels.csv"
    names = sorted(p.name for p in (real_root / "bigearthnet_s2_example").iterdir() if p.is_dir())
    path.write_text("".join(f"{n},any\n" for n in names))
    return path


def benchmark_geoft(
    cases: list[Case], batch_size: int = 8, num_workers: int = 0, epochs: int = 3
) -> list[Result]:
    """Iterate each case's training loader ``epochs`` times (batch transform included)."""
    from geoft.datamodules import GenericNonGeoClassificationDataModule, GenericNonGeoSegmentationDataModule

    classes = {
        "segmentation": GenericNonGeoSegmentationDataModule,
        "classification": GenericNonGeoClassificationDataModule,
    }
    results = []
    for case in cases:
        start = time.perf_counter()
        dm = classes[case.datamodule](
            batch_size=batch_size, num_workers=num_workers, drop_last=False, **case.init_args
        )
        dm.setup("fit")
        setup_s = time.perf_counter() - start
        transform = dm.batch_transform("train")
        loader = dm.train_dataloader()
        n, first, shape = 0, None, ""
        start = time.perf_counter()
        for _ in range(epochs):
            for batch in loader:
                batch = transform(batch)
                n += batch["image"].shape[0]
                shape = "x".join(map(str, batch["image"].shape[1:]))
                if first is None:
                    first = time.perf_counter() - start
        elapsed = time.perf_counter() - start
        results.append(
            Result(
                case.name,
                len(dm.train_dataset),
                shape,
                round(setup_s, 3),
                round(n / elapsed, 1),
                round(first or 0.0, 3),
                epochs,
                batch_size,
                num_workers,
            )
        )
    return results


def print_table(results: list[Result]) -> None:
    head = f"{'case':44} {'samples':>7} {'chip':>14} {'setup s':>8} {'samples/s':>10}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r.case:44} {r.samples:7d} {r.chip:>14} {r.setup_s:8.2f} {r.samples_per_s:10.1f}")


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/data_loading.json"))
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chips", type=int, default=64)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cases = benchmark_cases(Path(tmp), REAL if REAL.is_dir() else None, args.chips)
        results = benchmark_geoft(cases, args.batch_size, args.workers, args.epochs)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": platform.platform(), "library": "geoft", "results": [asdict(r) for r in results]}
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
