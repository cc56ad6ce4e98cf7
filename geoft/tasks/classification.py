"""Image classification: one label per image (single-label) or several (multi-label)."""

from __future__ import annotations

from typing import ClassVar

import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from geoft.task_kinds import TaskKind
from geoft.tasks.base import GeoftTask
from geoft.tasks.metrics import classification_metrics, confusion_matrix, multilabel_metrics
from geoft.tasks.plotting import label_figure

MULTILABEL_THRESHOLD = 0.5


class ClassificationTask(GeoftTask):
    """Single-label classification of ``label [B]`` (int64 class index).

    The model returns logits ``[B, num_classes]``. Losses: ``ce`` (default), ``bce``, ``focal``.
    Metrics: ``Accuracy``, ``Accuracy_Micro``, ``F1_Score``, ``Precision``, ``Recall``,
    ``Class_Accuracy_<class>``, ``Class_F1_<class>``, plus a confusion matrix.
    ``predict_step``: ``prediction [B]`` (int64), ``probabilities``/``logits [B, C]``.
    All arguments are described in :class:`geoft.tasks.base.GeoftTask`.
    """

    task_kind: ClassVar[TaskKind] = TaskKind.CLASSIFICATION
    default_loss: ClassVar[str] = "ce"
    supports_tiled_inference: ClassVar[bool] = False
    has_confusion_matrix: ClassVar[bool] = True

    def build_metrics(self) -> MetricCollection:
        return classification_metrics(
            self.num_classes, self.hparams["ignore_index"], self.hparams["class_names"]
        )

    def confusion_metric(self) -> Metric:
        return confusion_matrix(self.num_classes, self.hparams["ignore_index"])

    def prepare_target(self, target: Tensor) -> Tensor:
        return target.reshape(-1).long()

    def hard_prediction(self, output: Tensor) -> Tensor:
        return output.argmax(dim=1)

    def update_metrics(self, metrics: MetricCollection, output: Tensor, target: Tensor) -> None:
        metrics.update(self.hard_prediction(output), target)

    def inference(self, output: Tensor) -> dict[str, Tensor]:
        return {"prediction": output.argmax(dim=1), "probabilities": output.softmax(dim=1), "logits": output}

    def _name(self, index: int) -> str:
        names = self.hparams["class_names"]
        return str(names[index]) if names else str(index)

    def sample_figure(self, image: Tensor, target: Tensor | None, output: Tensor, title: str) -> Figure:
        truth = self._name(int(target)) if target is not None else None
        return label_figure(
            image, truth, self._name(int(output.argmax())), self.hparams["rgb_indices"], title
        )


class MultiLabelClassificationTask(ClassificationTask):
    """Multi-label classification of ``label [B, K]`` (multi-hot float32; ``ignore_index`` entries skipped).

    The model returns logits ``[B, K]``. Losses: ``bce`` (default), ``balanced_bce``. Metrics: as
    :class:`ClassificationTask` (on labels) plus ``AUROC``; no confusion matrix.
    ``predict_step``: ``prediction [B, K]`` (int64, sigmoid > 0.5), ``probabilities``/``logits [B, K]``.
    """

    task_kind: ClassVar[TaskKind] = TaskKind.MULTILABEL_CLASSIFICATION
    default_loss: ClassVar[str] = "bce"
    has_confusion_matrix: ClassVar[bool] = False

    def build_metrics(self) -> MetricCollection:
        return multilabel_metrics(self.num_classes, self.hparams["ignore_index"], self.hparams["class_names"])

    def prepare_target(self, target: Tensor) -> Tensor:
        return target.float()

    def hard_prediction(self, output: Tensor) -> Tensor:
        return (output.sigmoid() > MULTILABEL_THRESHOLD).long()

    def update_metrics(self, metrics: MetricCollection, output: Tensor, target: Tensor) -> None:
        ignore = self.hparams["ignore_index"]
        target_int = torch.nan_to_num(target, nan=float(ignore) if ignore is not None else 0.0).long()
        metrics.update(output.float().sigmoid(), target_int)

    def inference(self, output: Tensor) -> dict[str, Tensor]:
        probabilities = output.sigmoid()
        return {
            "prediction": (probabilities > MULTILABEL_THRESHOLD).long(),
            "probabilities": probabilities,
            "logits": output,
        }

    def sample_figure(self, image: Tensor, target: Tensor | None, output: Tensor, title: str) -> Figure:
        def names(active: Tensor) -> str:
            return ", ".join(self._name(int(i)) for i in torch.nonzero(active).flatten()) or "-"

        truth = names(target == 1) if target is not None else None
        predicted = names(output.sigmoid() > MULTILABEL_THRESHOLD)
        return label_figure(image, truth, predicted, self.hparams["rgb_indices"], title)
