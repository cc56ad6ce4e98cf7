"""Which of a run's metrics the Runs page shows first, whatever its task: IoU for segmentation, mAP for
object detection, RMSE/MAE/R² for pixel-wise and scalar regression; and per-class AP of detection runs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geoft.task_kinds import TaskKind

# the scores that judge a model, per task, in the order the tables show them
HEADLINE_METRICS = ("mIoU", "mAP", "mAP_50", "mAP_75", "RMSE", "MAE", "R2_Score", "Accuracy", "F1_Score")
PER_CLASS_AP = "/AP/"  # detection logs val/AP/<class>


def metric_rank(name: str) -> tuple[int, int, str]:
    """Sort key: headline scores first (validation before test), then accuracies, losses, the rest."""
    split, _, base = name.rpartition("/")
    stage = 0 if split.startswith("val") else 1
    if base in HEADLINE_METRICS:
        return (HEADLINE_METRICS.index(base), stage, name.lower())
    low = base.lower()
    group = 0 if "iou" in low else 1 if "acc" in low else 2 if "loss" in low else 3
    return (len(HEADLINE_METRICS) + group, stage, name.lower())


def table_metrics(names: Iterable[str]) -> list[str]:
    """Overall metrics for the runs table, headline first (per-class AP is in its own tab)."""
    return sorted({n for n in names if PER_CLASS_AP not in n}, key=metric_rank)


def per_class_ap(last: dict[str, float], split: str = "val") -> list[dict[str, Any]]:
    """``class``/``AP`` rows from a detection run's last ``<split>/AP/<class>`` values."""
    prefix = f"{split}{PER_CLASS_AP}"
    return [
        {"class": name[len(prefix) :], "AP": value}
        for name, value in last.items()
        if name.startswith(prefix) and isinstance(value, int | float) and math.isfinite(value)
    ]


def run_task_kind(config_path: Path) -> TaskKind | None:
    """The task kind of a run, read from its saved config (None when unreadable or not a geoft task)."""
    import yaml

    from geoft.app.task_builders import task_kind_of

    try:
        config = yaml.safe_load(Path(config_path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return task_kind_of(config) if isinstance(config, dict) else None
