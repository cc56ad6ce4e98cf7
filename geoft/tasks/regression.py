"""Pixel-wise regression: one value per pixel."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics import MetricCollection

from geoft.task_kinds import TaskKind
from geoft.tasks.base import GeoftTask
from geoft.tasks.losses import valid_mask
from geoft.tasks.metrics import regression_metrics
from geoft.tasks.plotting import pixel_figure
from geoft.tasks.segmentation import squeeze_mask


class PixelwiseRegressionTask(GeoftTask):
    """Pixel-wise regression of ``mask [B, H, W]`` (float32; ``ignore_index`` and NaN mean "unknown").

    The model returns ``[B, H, W]`` (or ``[B, 1, H, W]``). Losses: ``mse`` (default), ``mae``, ``rmse``,
    ``huber``, all averaged over valid pixels. Metrics: ``RMSE``, ``MSE``, ``MAE``, ``R2_Score``.
    ``predict_step``: ``prediction [B, H, W]`` (float32). All arguments are described in
    :class:`geoft.tasks.base.GeoftTask`; ``class_weights``/``class_names`` do not apply.
    """

    task_kind: ClassVar[TaskKind] = TaskKind.REGRESSION
    default_loss: ClassVar[str] = "mse"
    inference_outputs: ClassVar[tuple[str, ...]] = ("prediction",)

    def build_metrics(self) -> MetricCollection:
        return regression_metrics()

    def prepare_target(self, target: Tensor) -> Tensor:
        return squeeze_mask(target).float()

    def hard_prediction(self, output: Tensor) -> Tensor:
        return squeeze_mask(output)

    def update_metrics(self, metrics: MetricCollection, output: Tensor, target: Tensor) -> None:
        keep = valid_mask(target, self.hparams["ignore_index"])
        if keep.any():
            metrics.update(self.hard_prediction(output).float()[keep], target[keep])

    def inference(self, output: Tensor) -> dict[str, Tensor]:
        return {"prediction": self.hard_prediction(output)}

    def align_auxiliary(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape[-2:] == target.shape[-2:]:
            return pred
        pred4 = pred if pred.ndim == 4 else pred.unsqueeze(1)
        return F.interpolate(pred4, size=target.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)

    def sample_figure(self, image: Tensor, target: Tensor | None, output: Tensor, title: str) -> Figure:
        truth = None
        if target is not None:
            truth = target.float().clone()
            truth[~valid_mask(target, self.hparams["ignore_index"])] = float("nan")
        pred = output.squeeze(0) if output.ndim == 3 else output
        return pixel_figure(image, truth, pred, self.hparams["rgb_indices"], None, title)
