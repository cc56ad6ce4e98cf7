"""Sentinel-2 + Sentinel-1 against Sentinel-2 alone on real data: does the radar modality help?

The Sen1Floods11 chip in ``../shared/data/real/sen1floods11_sample`` (S2 13 bands, S1 VV/VH in dB,
one water label, 512² on one grid) is cut into 64-px tiles: three quadrants train, the bottom-right
quadrant tests (as ``benchmarks/precision_real.py``). Three models, all through geoft's
``GenericMultiModalDataModule`` (statistics of the training tiles, per modality):

* ``s2``: Prithvi-EO tiny on B3, B8, B11, B12;
* ``s2_s1_concat``: the same on those bands then VV, VH (``concat_bands: true``);
* ``s2_s1_late_fusion``: one Prithvi-EO tiny per modality, features concatenated (``late_fusion``).

Printed: test water IoU and mIoU per run and their mean per model; written to
``benchmarks/results/multimodal_real.json``. Always predicting "not water" has water IoU 0.

    .venv/bin/python benchmarks/multimodal_real.py [--seeds 0,1,2] [--epochs 12]

Set ``GEOFT_REAL_DATA`` if the real data are not in ``../shared/data/real``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import RESULTS_DIR, machine_info  # noqa: E402
from benchmarks.precision_real import (  # noqa: E402
    S2_BANDS,
    TILE,
    USED_BANDS,
    compare_over_seeds,
    fit_and_test,
    real_data_root,
    water_task,
)
from benchmarks.scenes import cut_into_quadrant_tiles  # noqa: E402

CHIP = "Spain_7370579"
S1_BANDS = ["VV", "VH"]
TINY = {"backbone": "prithvi_eo_tiny", "pretrained": False}  # no published weights: from scratch
PRITHVI_TINY = {"backbone": "prithvi_eo_tiny", "backbone_pretrained": False}
MODELS: dict[str, dict[str, Any]] = {
    "s2": {
        "modalities": ["S2"],
        "concat_bands": True,
        "model_args": {**PRITHVI_TINY, "backbone_in_chans": len(USED_BANDS)},
    },
    "s2_s1_concat": {
        "modalities": ["S2", "S1"],
        "concat_bands": True,
        "model_args": {**PRITHVI_TINY, "backbone_in_chans": len(USED_BANDS) + len(S1_BANDS)},
    },
    "s2_s1_late_fusion": {
        "modalities": ["S2", "S1"],
        "concat_bands": False,
        "model_args": {
            "backbone": "late_fusion",
            "backbone_merge_method": "concat",
            "backbone_encoders": {
                "S2": {**TINY, "in_chans": len(USED_BANDS)},
                "S1": {**TINY, "in_chans": len(S1_BANDS)},
            },
        },
    },
}


def cut_s2_s1_tiles(source: Path, out: Path, tile: int = TILE) -> Path:
    """S2, S1 and label tiles of the chip in ``out/train`` (three quadrants) and ``out/test``."""
    label = source / f"{CHIP}_LabelHand.tif"
    for sensor in ("S2", "S1"):
        cut_into_quadrant_tiles(source / f"{CHIP}_{sensor}Hand.tif", label, out, tile)
    return out


def multimodal_datamodule(tiles: Path, modalities: list[str], concat_bands: bool, batch_size: int = 8) -> Any:
    """geoft's multimodal datamodule over the quadrant tiles (test quadrant = val/test/predict)."""
    from geoft.datamodules import GenericMultiModalDataModule

    bands = {"S2": S2_BANDS, "S1": S1_BANDS}
    used = {"S2": USED_BANDS, "S1": S1_BANDS}
    roots = {split: {m: str(tiles / split) for m in modalities} for split in ("train", "test")}
    return GenericMultiModalDataModule(
        modalities=modalities,
        task="segmentation",
        num_classes=2,
        batch_size=batch_size,
        concat_bands=concat_bands,
        train_data_root=roots["train"],
        val_data_root=roots["test"],
        test_data_root=roots["test"],
        predict_data_root=roots["test"],
        train_label_data_root=str(tiles / "train"),
        val_label_data_root=str(tiles / "test"),
        test_label_data_root=str(tiles / "test"),
        image_grep={m: f"*_{m}Hand.tif" for m in modalities},
        label_grep="*_LabelHand.tif",
        dataset_bands={m: bands[m] for m in modalities},
        output_bands={m: used[m] for m in modalities},
        ignore_index=-1,
        no_data_replace=0,
        class_names=["not_water", "water"],
        stats_cache_dir=str(tiles / "stats"),
    )


def trained(tiles: Path, name: str, seed: int, epochs: int) -> tuple[Any, Any, dict[str, float]]:
    """Model ``name`` (a key of :data:`MODELS`) trained on ``tiles/train``: task, datamodule and the
    metrics on ``tiles/test``."""
    import lightning

    lightning.seed_everything(seed, verbose=False)
    spec = MODELS[name]
    datamodule = multimodal_datamodule(tiles, spec["modalities"], spec["concat_bands"])
    task = water_task(spec["model_args"], epochs)
    return task, datamodule, fit_and_test(task, datamodule, epochs, "32-true")


def train_and_test(tiles: Path, name: str, seed: int, epochs: int) -> dict[str, float]:
    """The test metrics of :func:`trained`."""
    return trained(tiles, name, seed, epochs)[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", default=str(RESULTS_DIR / "multimodal_real.json"))
    args = parser.parse_args(argv)
    source = real_data_root() / "sen1floods11_sample"
    if not source.is_dir():
        print(f"no real data at {source}; set GEOFT_REAL_DATA", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tiles = cut_s2_s1_tiles(source, Path(tmp))
        runs, summary = compare_over_seeds(
            list(MODELS), seeds, lambda name, seed: train_and_test(tiles, name, seed, args.epochs)
        )
    payload = {
        "seeds": seeds,
        "epochs": args.epochs,
        "machine": machine_info(),
        "summary": summary,
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
