"""The worst validation chips of a segmentation run: each val chip predicted with the run's best
checkpoint (the Predict page's code path), scored by its mean IoU against its label, lowest first.

Per-chip scores cannot come from the run's saved confusion matrix (it sums every chip), so the chips are
predicted again; predictions are kept under ``<run>/val_chips/`` and reused while the checkpoint is
unchanged. A chip's mean IoU averages the classes present in its label or its prediction (a class absent
from both says nothing about the chip); label pixels equal to the task's ``ignore_index`` are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from geoft.app.data_summary import config_chips
from geoft.app.evaluation import per_class_scores
from geoft.app.paths import confine
from geoft.app.predict import predict_to_geotiff
from geoft.app.run_store import RunRecord
from geoft.app.trained import best_checkpoint, run_config

PREDICTIONS = "val_chips"
MAX_CHIPS = 100


@dataclass(frozen=True)
class ChipScore:
    """A validation chip, its prediction and mean IoU; ``predict_index`` is its place in the Predict
    page's chip list (what its ``pred_chip`` selection holds)."""

    image: Path
    label: Path
    prediction: Path
    mean_iou: float
    predict_index: int


def chip_mean_iou(
    truth: np.ndarray, predicted: np.ndarray, num_classes: int, ignore_index: int | None
) -> float:
    """Mean IoU of one chip over the classes in its label or prediction (NaN when nothing is scored)."""
    keep = truth != ignore_index if ignore_index is not None else np.ones(truth.shape, dtype=bool)
    keep &= (truth >= 0) & (truth < num_classes) & (predicted >= 0) & (predicted < num_classes)
    pairs = truth[keep].astype(np.int64) * num_classes + predicted[keep].astype(np.int64)
    matrix = np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)
    ious = [row["IoU"] for row in per_class_scores(matrix, []) if not np.isnan(row["IoU"])]
    return float(np.mean(ious)) if ious else float("nan")


def _band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def worst_chips(
    run: RunRecord, roots: Sequence[Path], limit: int = 6, max_chips: int = MAX_CHIPS
) -> list[ChipScore]:
    """The ``limit`` validation chips with the lowest mean IoU among the first ``max_chips`` labelled ones
    (each prediction rebuilds the task from the checkpoint: a large validation split would take long)."""
    config = run_config(run)
    data_args = (config.get("data") or {}).get("init_args") or {}
    task_args = (config.get("model") or {}).get("init_args") or {}
    num_classes = int(
        (task_args.get("model_args") or {}).get("num_classes") or len(task_args.get("class_names") or []) or 2
    )
    ignore_index = task_args.get("ignore_index")
    checkpoint = best_checkpoint(run)
    out_dir = run.run_dir / PREDICTIONS
    chips = [
        c for c in config_chips(data_args) if confine(c[1], list(roots))
    ]  # as the Predict page lists them
    scores = []
    for index, (split, image, label) in enumerate(chips):
        if split != "val" or label is None:
            continue
        if len(scores) == max_chips:
            break
        out = out_dir / f"{image.stem}.tif"
        if not out.is_file() or out.stat().st_mtime < checkpoint.stat().st_mtime:
            predict_to_geotiff(run, image, out, checkpoint=checkpoint)
        iou = chip_mean_iou(_band(label), _band(out), num_classes, ignore_index)
        scores.append(ChipScore(image, label, out, iou, index))
    scores.sort(key=lambda s: (np.isnan(s.mean_iou), s.mean_iou))
    return scores[:limit]
