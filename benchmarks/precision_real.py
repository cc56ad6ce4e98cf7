"""bf16 against fp32 training on real data: does geoft's default precision cost accuracy?

The Sen1Floods11 chip in ``../shared/data/real/sen1floods11_sample`` (Sentinel-2, 13 bands, 512²,
water labels) is cut into 64-px tiles: three quadrants train, the bottom-right quadrant tests. The
model is geoft's default preset (Prithvi-EO tiny from scratch + UPerNet, 64 channels) on bands B3,
B8, B11, B12, trained with ``32-true`` and with ``bf16-mixed`` (geoft's default where the CPU has
native bf16) from the same seeds. Printed: test water IoU and mIoU per run, and the mean per precision.

    .venv/bin/python benchmarks/precision_real.py [--seeds 0,1,2] [--epochs 15] [--json]

Set ``GEOFT_REAL_DATA`` if the real data are not in ``../shared/data/real``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scenes import cut_into_quadrant_tiles  # noqa: E402

S2_BANDS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
USED_BANDS = ["B3", "B8", "B11", "B12"]
TILE = 64


def small_water_cnn(in_channels: int, num_classes: int = 2) -> Any:
    """A three-layer CNN that maps water on the Sen1Floods11 chip in seconds on a CPU."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(in_channels, 24, 3, padding=1),
        nn.BatchNorm2d(24),
        nn.ReLU(),
        nn.Conv2d(24, 24, 3, padding=2, dilation=2),
        nn.BatchNorm2d(24),
        nn.ReLU(),
        nn.Conv2d(24, num_classes, 1),
    )


def real_data_root() -> Path:
    env = os.environ.get("GEOFT_REAL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def sen1floods11_datamodule(tiles: Path, stats_dir: Path, batch_size: int = 8) -> Any:
    """geoft's generic segmentation datamodule over the quadrant tiles (test quadrant = val/test/predict)."""
    from geoft.datamodules import GenericNonGeoSegmentationDataModule

    return GenericNonGeoSegmentationDataModule(
        num_classes=2,
        batch_size=batch_size,
        train_data_root=tiles / "train",
        val_data_root=tiles / "test",
        test_data_root=tiles / "test",
        predict_data_root=tiles / "test",
        img_grep="*_S2Hand.tif",
        label_grep="*_LabelHand.tif",
        dataset_bands=S2_BANDS,
        output_bands=USED_BANDS,
        ignore_index=-1,
        no_data_replace=0,
        class_names=["not_water", "water"],
        stats_cache_dir=str(stats_dir),
    )


def quiet_trainer(epochs: int, precision: str) -> Any:
    """A CPU trainer with no logger, checkpoints, progress bar or validation: only the work is timed."""
    import lightning

    return lightning.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


def water_task(model_args: dict[str, Any], epochs: int, freeze_backbone: bool = False) -> Any:
    """The water segmentation task of these benchmarks around ``model_args`` (6 steps per epoch)."""
    from geoft.tasks import SemanticSegmentationTask

    return SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={**model_args, "decoder": "UperNetDecoder", "decoder_channels": 64, "num_classes": 2},
        loss="ce",
        ignore_index=-1,
        class_names=["not_water", "water"],
        optimizer="AdamW",
        lr=1e-3,
        scheduler="WarmupCosine",
        scheduler_hparams={"warmup_iters": min(12, 6 * epochs - 1), "interval": "step"},  # 6 steps/epoch
        freeze_backbone=freeze_backbone,
    )


def fit_and_test(task: Any, datamodule: Any, epochs: int, precision: str) -> dict[str, float]:
    """Fit on the training tiles, then test water IoU and mIoU on the held-out quadrant."""
    import torch

    trainer = quiet_trainer(epochs, precision)
    start = time.perf_counter()
    trainer.fit(task, datamodule)
    fit_s = time.perf_counter() - start
    with torch.no_grad():
        result = trainer.test(task, datamodule, verbose=False)[0]
    return {"water_iou": result["test/IoU_water"], "miou": result["test/mIoU"], "fit_s": fit_s}


def summarise(results: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over seeds of water IoU, mIoU and fit time."""
    return {
        key: {
            "mean": statistics.fmean(r[key] for r in results),
            "stdev": statistics.stdev(r[key] for r in results) if len(results) > 1 else 0.0,
        }
        for key in ("water_iou", "miou", "fit_s")
    }


def compare_over_seeds(
    variants: list[str], seeds: list[int], run: Callable[[str, int], dict[str, float]]
) -> tuple[dict[str, list[dict[str, float]]], dict[str, dict[str, dict[str, float]]]]:
    """``run(variant, seed)`` for every seed and variant, printed as it goes; the runs and their summary."""
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    width = max(len(v) for v in variants)
    for seed in seeds:
        for variant in variants:
            result = run(variant, seed)
            runs[variant].append(result)
            print(
                f"seed {seed} {variant:{width}s} water IoU {result['water_iou']:.3f} "
                f"mIoU {result['miou']:.3f} fit {result['fit_s']:.1f}s",
                flush=True,
            )
    summary = {variant: summarise(results) for variant, results in runs.items()}
    for variant, s in summary.items():
        print(
            f"{variant:{width}s} water IoU {s['water_iou']['mean']:.3f} ± {s['water_iou']['stdev']:.3f}  "
            f"mIoU {s['miou']['mean']:.3f} ± {s['miou']['stdev']:.3f}  fit {s['fit_s']['mean']:.1f}s"
        )
    return runs, summary


def train_and_test(tiles: Path, precision: str, seed: int, epochs: int) -> dict[str, float]:
    """Train the default preset on ``tiles/train`` with ``precision``; metrics on ``tiles/test``."""
    import lightning

    lightning.seed_everything(seed, verbose=False)
    model_args = {"backbone": "prithvi_eo_tiny", "backbone_pretrained": False, "backbone_bands": USED_BANDS}
    task = water_task(model_args, epochs)
    return fit_and_test(task, sen1floods11_datamodule(tiles, tiles / "stats"), epochs, precision)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    source = real_data_root() / "sen1floods11_sample"
    if not source.is_dir():
        print(f"no real data at {source}; set GEOFT_REAL_DATA", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tiles = Path(tmp)
        cut_into_quadrant_tiles(
            source / "Spain_7370579_S2Hand.tif", source / "Spain_7370579_LabelHand.tif", tiles, TILE
        )
        runs, summary = compare_over_seeds(
            ["32-true", "bf16-mixed"],
            seeds,
            lambda precision, seed: train_and_test(tiles, precision, seed, args.epochs),
        )
    if args.json:
        print(json.dumps({"seeds": seeds, "epochs": args.epochs, "summary": summary, "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
