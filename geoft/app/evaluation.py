"""Per-class scores of a run from the confusion matrices its task saved (``confusion_matrices.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from geoft.errors import DataError
from geoft.runs.folder import RunDir


def load_confusion(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``split -> {"epoch", "class_names", "matrix"}`` ({} when the run saved none)."""
    path = RunDir(run_dir).confusion_file()
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold a mapping of confusion matrices")
    return data


def per_class_scores(matrix: list[list[int]] | np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """IoU, precision, recall and support per class (rows = truth, columns = prediction)."""
    cm = np.asarray(matrix, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise DataError(f"a confusion matrix must be square, got shape {cm.shape}")
    if len(class_names) != cm.shape[0]:
        class_names = [str(i) for i in range(cm.shape[0])]
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
    return [
        {
            "class": name,
            "IoU": float(iou[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "pixels": int(cm[i].sum()),
        }
        for i, name in enumerate(class_names)
    ]
