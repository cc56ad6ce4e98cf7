"""Callbacks every geoft task brings along (from ``configure_callbacks``): confusion matrices and
validation sample figures. They read what the task's validation/test steps return
(``{"output": main output, "target": prepared target}``).

Confusion matrices of the last validation/test epoch are kept in ``task.confusion_matrices``
(``{"val": {"epoch", "class_names", "matrix"}, "test": ...}``; rows are true classes, columns
predicted ones) and written to ``<logger.log_dir>/confusion_matrices.json`` when the trainer's
logger has a ``log_dir``. The file name and layout are what the app reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from torchmetrics import Metric

from geoft.tasks.plotting import can_log_figures, log_figure

CONFUSION_FILE = "confusion_matrices.json"
PLOT_BATCHES = 4  # validation/test batches per plotting epoch that get a figure (first sample each)


class ConfusionMatrices(Callback):
    """Accumulate a confusion matrix per validation and test dataloader; store and write it per epoch.

    The task provides ``confusion_metric()`` (a fresh torchmetrics metric), ``hard_prediction(output)``,
    ``test_prefixes``, ``num_classes``, ``hparams["class_names"]`` and a ``confusion_matrices`` dict.
    """

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}

    def _metric(self, pl_module: LightningModule, key: str) -> Metric:
        if key not in self.metrics:
            self.metrics[key] = pl_module.confusion_metric().to(pl_module.device)
        return self.metrics[key]

    def _update(self, pl_module: LightningModule, key: str, outputs: Any) -> None:
        if not isinstance(outputs, Mapping) or "output" not in outputs:
            return
        metric = self._metric(pl_module, key)
        metric.update(pl_module.hard_prediction(outputs["output"]), outputs["target"])

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._update(pl_module, "val", outputs)

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        prefixes = pl_module.test_prefixes
        if dataloader_idx < len(prefixes):
            self._update(pl_module, prefixes[dataloader_idx], outputs)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._store(trainer, pl_module, ["val"])

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._store(trainer, pl_module, list(pl_module.test_prefixes))

    def _store(self, trainer: Trainer, pl_module: LightningModule, keys: Sequence[str]) -> None:
        stored = False
        for key in keys:
            metric = self.metrics.get(key)
            if metric is None:
                continue
            if metric.update_count == 0 or trainer.sanity_checking:
                metric.reset()
                continue
            matrix = metric.compute().cpu().long().tolist()
            metric.reset()
            names = pl_module.hparams.get("class_names") or [
                str(i) for i in range(pl_module.num_classes or 0)
            ]
            pl_module.confusion_matrices[key] = {
                "epoch": pl_module.current_epoch,
                "class_names": list(names),
                "matrix": matrix,
            }
            stored = True
        log_dir = getattr(trainer.logger, "log_dir", None) if trainer.logger is not None else None
        if stored and log_dir and trainer.is_global_zero:
            os.makedirs(log_dir, exist_ok=True)
            with open(os.path.join(log_dir, CONFUSION_FILE), "w", encoding="utf-8") as f:
                json.dump(pl_module.confusion_matrices, f, indent=1)


class SampleFigures(Callback):
    """Log image / truth / prediction figures of the first ``batches`` validation (and first test
    dataloader) batches, every ``every`` validation epochs, to loggers that take figures.

    The task provides ``sample_figure(image, target, output, title)``.
    """

    def __init__(self, every: int, batches: int = PLOT_BATCHES) -> None:
        self.every = every
        self.batches = batches

    def _plot(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        stage: str,
    ) -> None:
        if not self.every or batch_idx >= self.batches or trainer.sanity_checking:
            return
        if stage == "val" and pl_module.current_epoch % self.every:
            return
        if not isinstance(outputs, Mapping) or "output" not in outputs:
            return
        loggers = [lg for lg in trainer.loggers if can_log_figures(lg)]
        if not loggers:
            return
        filenames = batch.get("filename")
        name = str(filenames[0]) if isinstance(filenames, Sequence) and filenames else f"batch{batch_idx}"
        title = f"{stage} epoch {pl_module.current_epoch}: {os.path.basename(name)}"
        image = batch["image"]
        if isinstance(image, Mapping):  # a multimodal batch: draw its first modality
            image = next(iter(image.values()))
        for logger in loggers:
            fig = pl_module.sample_figure(image[0], outputs["target"][0], outputs["output"][0], title)
            log_figure(logger, f"{stage}/sample_{batch_idx}", fig, pl_module.global_step)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._plot(trainer, pl_module, outputs, batch, batch_idx, "val")

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx == 0:
            self._plot(trainer, pl_module, outputs, batch, batch_idx, "test")


__all__ = ["CONFUSION_FILE", "ConfusionMatrices", "PLOT_BATCHES", "SampleFigures"]
