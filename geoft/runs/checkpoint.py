"""The checkpoint callback of a run folder: the best checkpoint and a ``last.ckpt`` of the latest epoch."""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint


class BestAndLastCheckpoint(ModelCheckpoint):
    """Keeps the best checkpoint by ``monitor`` and a ``last.ckpt`` that is always the latest epoch.

    Lightning's ``save_last=True`` refreshes ``last.ckpt`` only when a new best is saved, so after an
    epoch that did not improve, ``last.ckpt`` (what resume and the app use) would hold older weights.
    """

    def __init__(self, dirpath: str, monitor: str = "val/loss", mode: str = "min") -> None:
        super().__init__(
            dirpath=dirpath,
            filename="best-epoch={epoch:02d}",
            monitor=monitor,
            mode=mode,
            save_last=True,
            auto_insert_metric_name=False,
        )

    def _refresh_last(self, trainer: Trainer) -> None:
        if (
            not self._should_skip_saving_checkpoint(trainer)
            and self._last_global_step_saved != trainer.global_step
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)
