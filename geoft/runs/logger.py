"""The Lightning logger that streams metrics into the run folder's ``metrics.jsonl``."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from geoft.runs.events import JsonlWriter
from geoft.runs.folder import RunDir


def as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class JsonlLogger(Logger):
    """A Lightning logger that writes every metrics log call as a ``metrics`` line of ``metrics.jsonl``."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self._run = RunDir(Path(run_dir))
        self._writer = JsonlWriter(self._run.metrics)

    @property
    def name(self) -> str:
        return "jsonl"

    @property
    def version(self) -> str:
        return ""

    @property
    def root_dir(self) -> str:
        return str(self._run.path)

    @property
    def log_dir(self) -> str:
        return str(self._run.path)

    @property
    @rank_zero_experiment
    def experiment(self) -> JsonlWriter:
        return self._writer

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Hyperparameters are in config.yaml; nothing to add here."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = {k: as_float(v) for k, v in metrics.items() if k != "epoch"}
        epoch = metrics.get("epoch")
        stages = {k.split("/", 1)[0] for k in values if "/" in k}
        stage = stages.pop() if len(stages) == 1 else "mixed"
        self._writer.write(
            "metrics",
            stage=stage,
            epoch=int(epoch) if epoch is not None else None,
            step=step,
            metrics=values,
        )
