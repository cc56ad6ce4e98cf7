"""Start a new fine-tuning from a checkpoint's weights: geoft's or the reference's (TerraTorch's).

``--ckpt_path`` resumes (optimizer, counters, callbacks). To train afresh from trained weights
instead (epoch 0, the configured optimizer and scheduler), add this callback to the config::

    trainer:
      callbacks:
        - class_path: geoft.runs.initial_weights.InitialWeights
          init_args: {ckpt_path: reference.ckpt}
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from geoft.errors import ConfigError
from geoft.runs.reference_layout import stderr_notice
from geoft.runs.restore import load_checkpoint, load_task_weights


class InitialWeights(Callback):
    """Loads every weight of ``ckpt_path`` into the task as fitting starts (strictly; layout translated)."""

    def __init__(self, ckpt_path: str | Path) -> None:
        self.ckpt_path = Path(ckpt_path)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # after Lightning's own restore (so a --ckpt_path is known) and before the first step; the
        # weights are copied into the parameters the optimizer already holds
        if trainer.ckpt_path is not None:
            raise ConfigError(
                f"both --ckpt_path {trainer.ckpt_path} (resume) and InitialWeights({self.ckpt_path}) "
                "(start afresh from its weights) are given",
                hint="keep one: --ckpt_path continues a run, InitialWeights starts a new one",
            )
        load_task_weights(pl_module, load_checkpoint(self.ckpt_path), self.ckpt_path, stderr_notice)
        stderr_notice(f"starting from the weights of {self.ckpt_path} (new run: epoch 0, fresh optimizer)")


__all__ = ["InitialWeights"]
