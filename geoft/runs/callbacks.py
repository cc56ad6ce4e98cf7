"""The callback that writes a run's ``start``, ``checkpoint`` and ``end`` events."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from geoft.errors import find_geoft_error
from geoft.runs.events import JsonlWriter
from geoft.runs.folder import RunDir
from geoft.runs.logger import as_float
from geoft.storage import StorageError


def user_message(exception: BaseException) -> str:
    """What ``geoft`` prints for an error: a GeoftError's own message, else ``<Type>: <text>``."""
    found = find_geoft_error(exception)
    return str(found) if found is not None else f"{type(exception).__name__}: {exception}"


class RunEvents(Callback):
    """Writes ``start``, ``checkpoint`` and ``end`` lines of ``metrics.jsonl`` (rank zero only)."""

    def __init__(self, run_dir: str | Path, stage: str) -> None:
        self.run_dir = Path(run_dir)
        self.writer = JsonlWriter(RunDir(self.run_dir).metrics)
        self.stage = stage
        self._ended = False
        self._last_checkpoint: tuple[int, int] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self._ended = False
            self.writer.write(
                "start", stage=self.stage, max_epochs=trainer.max_epochs, run_dir=str(self.run_dir)
            )

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Called before the file is written; the path is reported from the checkpoint callback at the end.
        position = (trainer.current_epoch, trainer.global_step)
        if trainer.is_global_zero and position != self._last_checkpoint:  # best and last: one line
            self._last_checkpoint = position
            self.writer.write("checkpoint", epoch=trainer.current_epoch, step=trainer.global_step)

    def _end(
        self, trainer: Trainer, status: str, error: str | None = None, message: str | None = None
    ) -> None:
        if self._ended or not trainer.is_global_zero:
            return
        self._ended = True
        if error is not None:
            error = error.replace("\nHint: ", " Hint: ")
        ckpt = (
            trainer.checkpoint_callback if isinstance(trainer.checkpoint_callback, ModelCheckpoint) else None
        )
        try:
            self.writer.write(
                "end",
                stage=self.stage,
                status=status,
                error=error,
                message=message,
                best_model_path=(ckpt.best_model_path or None) if ckpt else None,
                best_model_score=as_float(ckpt.best_model_score)
                if ckpt and ckpt.best_model_score is not None
                else None,
                last_model_path=(ckpt.last_model_path or None) if ckpt else None,
            )
        except StorageError as err:
            # Raising here would hide the error that ended the run; say it and go on.
            print(f"geoft: warning: the end of the run was not recorded: {err}", file=sys.stderr)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._end(trainer, "interrupted" if trainer.interrupted else "finished")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        status = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
        self._end(trainer, status, f"{type(exception).__name__}: {exception}", user_message(exception))
