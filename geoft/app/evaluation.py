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


def _val_loss_name(names: list[str]) -> str | None:
    losses = [n for n in names if "val" in n.lower() and "loss" in n.lower()]
    return min(losses, key=len) if losses else None


def loss_rising(values: list[float]) -> bool:
    """Validation loss that rose for most of the run (and ended clearly above its start)."""
    if len(values) < 3:
        return False
    rises = sum(b > a for a, b in zip(values, values[1:]))
    return rises > (len(values) - 1) / 2 and values[-1] > values[0] * 1.1


def collapsed_class(
    matrix: list[list[int]] | np.ndarray, threshold: float = 0.97
) -> tuple[int, float] | None:
    """``(class, share)`` when one class takes ``threshold`` of the predictions although the truth has others."""
    cm = np.asarray(matrix, dtype=np.float64)
    if cm.ndim != 2 or cm.sum() == 0:
        return None
    predicted = cm.sum(axis=0) / cm.sum()
    truth = cm.sum(axis=1) / cm.sum()
    top = int(predicted.argmax())
    if predicted[top] >= threshold and (truth > 0.03).sum() >= 2:
        return top, float(predicted[top])
    return None


def learning_warnings(
    records: list[dict[str, Any]], confusion: dict[str, dict[str, Any]], config: dict[str, Any]
) -> list[str]:
    """Whether the model learned: warnings for collapsed predictions and rising validation loss, with
    the likely causes read from the config (random weights, learning rate, few chips)."""
    from geoft.app.config_check import random_weights_warning
    from geoft.app.progress import epoch_series, metric_names

    found = []
    entry = confusion.get("val") or next(iter(confusion.values()), None)
    if entry and entry.get("matrix"):
        hit = collapsed_class(entry["matrix"])
        if hit is not None:
            names = entry.get("class_names") or []
            name = names[hit[0]] if hit[0] < len(names) else str(hit[0])
            found.append(
                f"the model predicts '{name}' for {hit[1]:.0%} of the validation pixels "
                f"(epoch {entry.get('epoch')}): it has collapsed to one class"
            )
    loss = _val_loss_name(metric_names(records))
    values = epoch_series(records, loss) if loss else []
    if loss_rising(values):
        found.append(f"{loss} rose from {values[0]:.3g} to {values[-1]:.3g} over {len(values)} validations")
    if not found:
        return []
    task = (config.get("model") or {}).get("init_args") or {}
    causes = []
    if random_weights_warning(config):
        causes.append(
            "the backbone started from random weights (choose pretrained weights on the Model page)"
        )
    lr = task.get("lr")
    if isinstance(lr, int | float) and lr >= 5e-4:
        causes.append(f"the learning rate {lr:g} may be too high for fine-tuning (try 1e-4)")
    causes.append("too few training chips or epochs for the number of classes")
    if task.get("ignore_index") is None:
        causes.append("no ignore value: 'no data' label pixels count as a class")
    return [f"{w}. Likely causes: " + "; ".join(causes) + "." for w in found]
