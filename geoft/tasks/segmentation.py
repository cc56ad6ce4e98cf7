"""Semantic segmentation: one class per pixel."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from geoft.task_kinds import TaskKind
from geoft.tasks.base import GeoftTask
from geoft.tasks.metrics import confusion_matrix, segmentation_metrics
from geoft.tasks.plotting import pixel_figure


def squeeze_mask(target: Tensor) -> Tensor:
    """``[B, 1, H, W]`` -> ``[B, H, W]``; other shapes unchanged."""
    return target.squeeze(1) if target.ndim == 4 and target.shape[1] == 1 else target


class SemanticSegmentationTask(GeoftTask):
    """Semantic segmentation of ``mask [B, H, W]`` (int64 class indices, ``ignore_index`` where unknown).

    The model returns logits ``[B, num_classes, H, W]``. Losses: ``ce`` (default), ``dice``, ``focal``,
    ``jaccard``, ``lovasz``. Metrics: ``mIoU``, ``mIoU_Micro``, ``F1_Score``, ``Accuracy``,
    ``Pixel_Accuracy``, ``IoU_<class>``, ``Class_Accuracy_<class>``, plus a confusion matrix.
    ``predict_step``: ``prediction [B, H, W]`` (int64), ``probabilities``/``logits [B, C, H, W]``.
    All arguments are described in :class:`geoft.tasks.base.GeoftTask`.
    """

    task_kind: ClassVar[TaskKind] = TaskKind.SEGMENTATION
    default_loss: ClassVar[str] = "ce"
    has_confusion_matrix: ClassVar[bool] = True

    def build_metrics(self) -> MetricCollection:
        return segmentation_metrics(
            self.num_classes, self.hparams["ignore_index"], self.hparams["class_names"]
        )

    def confusion_metric(self) -> Metric:
        return confusion_matrix(self.num_classes, self.hparams["ignore_index"])

    def prepare_target(self, target: Tensor) -> Tensor:
        return squeeze_mask(target).long()

    def hard_prediction(self, output: Tensor) -> Tensor:
        return output.argmax(dim=1)

    def update_metrics(self, metrics: MetricCollection, output: Tensor, target: Tensor) -> None:
        metrics.update(self.hard_prediction(output), target)

    def inference(self, output: Tensor) -> dict[str, Tensor]:
        return {"prediction": output.argmax(dim=1), "probabilities": output.softmax(dim=1), "logits": output}

    def align_auxiliary(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape[-2:] != target.shape[-2:]:
            return F.interpolate(pred, size=target.shape[-2:], mode="bilinear", align_corners=False)
        return pred

    def sample_figure(self, image: Tensor, target: Tensor | None, output: Tensor, title: str) -> Figure:
        truth = None
        if target is not None:
            ignore = self.hparams["ignore_index"]
            truth = target.float()
            if ignore is not None:
                truth[target == ignore] = float("nan")
        return pixel_figure(
            image, truth, output.argmax(dim=0), self.hparams["rgb_indices"], self.num_classes, title
        )
