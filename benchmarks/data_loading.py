"""Data loading speed: each tool's ``GenericNonGeoSegmentationDataModule`` on the same chips (samples/s).

    .venv/bin/python benchmarks/run_all.py --only data_loading [--quick]

Cases (each tool reads the same files with the same arguments: batch size, ``num_workers=0``,
means/stds, no-data replacement):

* ``generated_224``: generated 6-band int16 224x224 chips with masks (``benchmarks/scenes.py``).
* ``s1f11_512_repeat``: the real Sen1Floods11 chip (S2Hand, 13-band int16 512x512, LabelHand)
  linked 16 times into a temporary folder, so one file is read repeatedly (from the OS cache).
* ``s1f11_256_tiles``: the same chip cut into 4 files of 256x256 (same compression and nodata),
  so both tools read several real files.

One measurement (:func:`load_train`, in a fresh process of the tool's environment): build the
datamodule, ``setup("fit")``, then draw ``batches`` batches from the train loader (restarting it
at the end of an epoch) and normalise each as ``on_after_batch_transfer`` would during ``fit``
(geoft's batch transform, the reference's torchgeo ``train_aug``).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Benchmark, Case, Measure, Metric, run_worker

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "sen1floods11_sample"
S1F11_STEM = "Spain_7370579"


def s1f11_statistics(source: Path = REAL) -> tuple[list[float], list[float]]:
    """Per-band mean and std of the real chip's valid pixels (nodata 0 excluded), given to both tools."""
    import numpy as np
    import rasterio

    with rasterio.open(source / f"{S1F11_STEM}_S2Hand.tif") as src:
        image = src.read().astype(np.float64)
        nodata = src.nodata
    valid = [band[band != nodata] if nodata is not None else band.ravel() for band in image]
    return [float(v.mean()) for v in valid], [float(v.std()) for v in valid]


# -- worker function (runs in the tool's own environment) ---------------------------------------------
def datamodule_class(tool: str) -> Any:
    """The tool's ``GenericNonGeoSegmentationDataModule`` class."""
    if tool == "reference":
        from terratorch.datamodules import GenericNonGeoSegmentationDataModule
    elif tool == "geoft":
        from geoft.datamodules import GenericNonGeoSegmentationDataModule
    else:
        raise ValueError(f"unknown tool {tool!r}")
    return GenericNonGeoSegmentationDataModule


def load_train(tool: str, datamodule_args: dict[str, Any], batches: int) -> dict[str, float]:
    """Setup time, then samples/s over ``batches`` normalised train batches (epochs restart as needed).

    ``setup_s`` covers constructing the datamodule and ``setup("fit")``, not importing the tool.
    """
    import resource

    cls = datamodule_class(tool)
    start = time.perf_counter()
    datamodule = cls(**datamodule_args)
    datamodule.setup("fit")
    setup_s = time.perf_counter() - start
    if tool == "geoft":
        transform = datamodule.batch_transform("train")
    else:
        transform = datamodule._valid_attribute("train_aug", "aug")
    loader = datamodule.train_dataloader()
    if len(loader) == 0:
        raise RuntimeError(f"{tool}: the train loader yields no batch (fewer files than the batch size?)")
    seen = drawn = 0
    start = time.perf_counter()
    while drawn < batches:
        for batch in loader:
            batch = transform(batch)
            seen += int(batch["image"].shape[0])
            drawn += 1
            if drawn == batches:
                break
    elapsed = time.perf_counter() - start
    return {
        "samples_per_s": seen / elapsed,
        "setup_s": setup_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


# -- inputs (written in the harness's process) --------------------------------------------------------
def s1f11_repeat(root: Path, copies: int, source: Path = REAL) -> Path:
    """``copies`` symlinks to the real image/label pair under ``root/{images,labels}``."""
    for kind, suffix in (("images", "S2Hand"), ("labels", "LabelHand")):
        (root / kind).mkdir(parents=True, exist_ok=True)
        target = source / f"{S1F11_STEM}_{suffix}.tif"
        for i in range(copies):
            link = root / kind / f"{S1F11_STEM}_r{i:02d}_{suffix}.tif"
            if not link.exists():
                link.symlink_to(target)
    return root


def s1f11_tiles(root: Path, tile: int = 256, source: Path = REAL) -> Path:
    """Cut the real image/label pair into ``tile``-sized files (same dtype, nodata, compression)."""
    import rasterio
    from rasterio.windows import Window, transform

    for kind, suffix in (("images", "S2Hand"), ("labels", "LabelHand")):
        (root / kind).mkdir(parents=True, exist_ok=True)
        with rasterio.open(source / f"{S1F11_STEM}_{suffix}.tif") as src:
            for row in range(0, src.height, tile):
                for col in range(0, src.width, tile):
                    window = Window(col, row, tile, tile)
                    profile = dict(src.profile)
                    profile.update(width=tile, height=tile, transform=transform(window, src.transform))
                    path = root / kind / f"{S1F11_STEM}_t{row // tile}{col // tile}_{suffix}.tif"
                    with rasterio.open(path, "w", **profile) as dst:
                        dst.write(src.read(window=window))
    return root


def data_dir() -> Path:
    """Where generated inputs live: ``$GEOFT_BENCH_DATA`` or a folder in the system temp dir."""
    env = os.environ.get("GEOFT_BENCH_DATA")
    return Path(env) if env else Path(tempfile.gettempdir()) / "geoft-bench-data"


def segmentation_args(
    images: Path,
    labels: Path,
    img_grep: str,
    label_grep: str,
    num_classes: int,
    batch_size: int,
    **extra: Any,
) -> dict[str, Any]:
    """Arguments both tools' datamodules take under the same names; train and val read the same files."""
    return {
        "batch_size": batch_size,
        "num_workers": 0,
        "num_classes": num_classes,
        "train_data_root": str(images),
        "train_label_data_root": str(labels),
        "val_data_root": str(images),
        "val_label_data_root": str(labels),
        "img_grep": img_grep,
        "label_grep": label_grep,
        "drop_last": True,
        **extra,
    }


# -- benchmark definition -----------------------------------------------------------------------------
def build(quick: bool, threads: int = 2) -> Benchmark:
    """Generated chips and, where ``../shared/data/real`` has it, the real Sen1Floods11 chip."""
    from benchmarks.scenes import ChipSet, make_chips

    batch = 8
    batches = 4 if quick else 24
    n_chips = 32 if quick else 64
    chips = make_chips(data_dir() / f"chips224_n{n_chips}", n_train=n_chips, n_val=batch, size=224)
    # (name, arguments of both tools, arguments only geoft has, note)
    inputs: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
        (
            "generated_224",
            segmentation_args(
                chips.images("train"),
                chips.labels("train"),
                ChipSet.img_glob,
                ChipSet.label_glob,
                num_classes=2,
                batch_size=batch,
                means=ChipSet.means(6),
                stds=ChipSet.stds(6),
            ),
            {},
            f"{n_chips} generated 6-band int16 224x224 chips + masks, batch {batch}, {batches} batches",
        )
    ]
    if REAL.is_dir():
        # A folder of its own per run: the links and tiles are cheap, and a stale one can't mislead.
        work = Path(tempfile.mkdtemp(prefix="geoft-bench-s1f11-"))
        means, stds = s1f11_statistics()
        real = {
            "num_classes": 2,
            "means": means,
            "stds": stds,
            "no_data_replace": 0.0,
            "no_label_replace": -1,
        }
        # geoft checks label values against num_classes, so it must be told that -1 means "ignore";
        # the reference has no such argument (it reads -1 through unchecked).
        geoft_only = {"ignore_index": -1}
        rep = s1f11_repeat(work / "repeat", copies=16)
        inputs.append(
            (
                "s1f11_512_repeat",
                segmentation_args(
                    rep / "images",
                    rep / "labels",
                    "*_S2Hand.tif",
                    "*_LabelHand.tif",
                    batch_size=batch,
                    **real,
                ),
                geoft_only,
                f"real Sen1Floods11 S2Hand 13-band 512x512 chip linked 16x, batch {batch}, {batches} batches",
            )
        )
        tiles = s1f11_tiles(work / "tiles")
        inputs.append(
            (
                "s1f11_256_tiles",
                segmentation_args(
                    tiles / "images",
                    tiles / "labels",
                    "*_S2Hand.tif",
                    "*_LabelHand.tif",
                    batch_size=4,
                    **real,
                ),
                geoft_only,
                f"the real chip cut into 4 files of 256x256, batch 4 (one batch per epoch), {batches} batches",
            )
        )
    else:
        print(f"[data_loading] {REAL} not found: real-chip cases skipped", flush=True)

    metrics = {
        "samples_per_s": Metric("samples/s", higher_is_better=True),
        "setup_s": Metric("s", higher_is_better=False),
        "peak_rss_mb": Metric("MiB", higher_is_better=False),
    }

    def measures(args: dict[str, Any], geoft_only: dict[str, Any]) -> dict[str, Measure]:
        return {
            tool: (
                lambda tool=tool: run_worker(
                    tool,
                    "data_loading",
                    "load_train",
                    {
                        "tool": tool,
                        "datamodule_args": {**args, **(geoft_only if tool == "geoft" else {})},
                        "batches": batches,
                    },
                    timeout_s=600.0,
                    threads=threads,
                )
            )
            for tool in ("geoft", "reference")
        }

    cases = [
        Case(name, measures(args, extra), metrics, note=f"{note}, 0 workers, normalised")
        for name, args, extra, note in inputs
    ]
    return Benchmark("data_loading", cases, repeats=1 if quick else 3, warmup=0 if quick else 1)
