"""torchmetrics collections for every task (names match the reference, so monitors carry over).

* segmentation: ``mIoU``, ``mIoU_Micro``, ``F1_Score``, ``Accuracy``, ``Pixel_Accuracy``,
  ``IoU_<class>``, ``Class_Accuracy_<class>``
* regression: ``RMSE``, ``MSE``, ``MAE``, ``R2_Score`` (ignored and NaN targets are dropped first)
* scalar regression: the same (per image), plus ``RMSE_<var>``, ``MAE_<var>``, ``R2_Score_<var>``
  with several outputs
* classification: ``Accuracy``, ``Accuracy_Micro``, ``F1_Score``, ``Precision``, ``Recall``,
  ``Class_Accuracy_<class>``, ``Class_F1_<class>``
* multi-label: the classification names plus ``AUROC`` (on sigmoid probabilities)
* reconstruction: ``RMSE``, ``MSE``, ``MAE`` over the pixels of the hidden (or all) patches

``<class>`` is the class name from ``class_names`` or the class index.

torchmetrics' per-update input validation (a ``torch.unique`` over every pixel, ~40 % of a small
model's step time) is off: the task checks target values once on the first batch instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics import (
    ClasswiseWrapper,
    MeanAbsoluteError,
    MeanSquaredError,
    Metric,
    MetricCollection,
    R2Score,
)
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelAccuracy,
    MultilabelAUROC,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)

from geoft.errors import ConfigError


def _labels(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ConfigError(
            f"class_names has {len(class_names)} names but the model predicts {num_classes} classes",
            hint="give one name per class, in class-index order",
        )
    return [str(name) for name in class_names]


def segmentation_metrics(
    num_classes: int, ignore_index: int | None, class_names: Sequence[str] | None = None
) -> MetricCollection:
    """Metrics on hard predictions ``[B, H, W]`` against masks ``[B, H, W]``."""
    labels = _labels(class_names, num_classes)
    common = {"num_classes": num_classes, "ignore_index": ignore_index, "validate_args": False}
    return MetricCollection(
        {
            "mIoU": MulticlassJaccardIndex(average="macro", **common),
            "mIoU_Micro": MulticlassJaccardIndex(average="micro", **common),
            "F1_Score": MulticlassF1Score(average="macro", **common),
            "Accuracy": MulticlassAccuracy(average="macro", **common),
            "Pixel_Accuracy": MulticlassAccuracy(average="micro", **common),
            "IoU": ClasswiseWrapper(
                MulticlassJaccardIndex(average=None, **common), labels=labels, prefix="IoU_"
            ),
            "Class_Accuracy": ClasswiseWrapper(
                MulticlassAccuracy(average=None, **common), labels=labels, prefix="Class_Accuracy_"
            ),
        }
    )


def regression_metrics() -> MetricCollection:
    """Metrics on flat predictions and targets of valid pixels only."""
    return MetricCollection(
        {
            "RMSE": MeanSquaredError(squared=False),
            "MSE": MeanSquaredError(squared=True),
            "MAE": MeanAbsoluteError(),
            "R2_Score": R2Score(),
        }
    )


def scalar_regression_metrics(num_outputs: int, var_names: Sequence[str] | None = None) -> MetricCollection:
    """Metrics on predictions and targets ``[N]`` (one output) or ``[N, num_outputs]``.

    With several outputs, ``RMSE``/``MSE``/``MAE``/``R2_Score`` average over the outputs and
    ``RMSE_<var>``, ``MAE_<var>``, ``R2_Score_<var>`` name each one.
    """
    if num_outputs == 1:
        return regression_metrics()
    labels = _labels(var_names, num_outputs)
    return MetricCollection(
        {
            "RMSE": MeanSquaredError(squared=False),
            "MSE": MeanSquaredError(squared=True),
            "MAE": MeanAbsoluteError(),
            "R2_Score": R2Score(multioutput="uniform_average"),
            "RMSE_var": ClasswiseWrapper(
                MeanSquaredError(squared=False, num_outputs=num_outputs), labels=labels, prefix="RMSE_"
            ),
            "MAE_var": ClasswiseWrapper(
                MeanAbsoluteError(num_outputs=num_outputs), labels=labels, prefix="MAE_"
            ),
            "R2_var": ClasswiseWrapper(R2Score(multioutput="raw_values"), labels=labels, prefix="R2_Score_"),
        }
    )


def classification_metrics(
    num_classes: int, ignore_index: int | None, class_names: Sequence[str] | None = None
) -> MetricCollection:
    """Metrics on hard predictions ``[B]`` against labels ``[B]``."""
    labels = _labels(class_names, num_classes)
    common = {"num_classes": num_classes, "ignore_index": ignore_index, "validate_args": False}
    return MetricCollection(
        {
            "Accuracy": MulticlassAccuracy(average="macro", **common),
            "Accuracy_Micro": MulticlassAccuracy(average="micro", **common),
            "F1_Score": MulticlassF1Score(average="macro", **common),
            "Precision": MulticlassPrecision(average="macro", **common),
            "Recall": MulticlassRecall(average="macro", **common),
            "Class_Accuracy": ClasswiseWrapper(
                MulticlassAccuracy(average=None, **common), labels=labels, prefix="Class_Accuracy_"
            ),
            "Class_F1": ClasswiseWrapper(
                MulticlassF1Score(average=None, **common), labels=labels, prefix="Class_F1_"
            ),
        }
    )


def multilabel_metrics(
    num_labels: int, ignore_index: int | None, class_names: Sequence[str] | None = None
) -> MetricCollection:
    """Metrics on probabilities ``[B, K]`` against multi-hot int targets ``[B, K]``."""
    labels = _labels(class_names, num_labels)
    common = {"num_labels": num_labels, "ignore_index": ignore_index, "validate_args": False}
    return MetricCollection(
        {
            "Accuracy": MultilabelAccuracy(average="macro", **common),
            "Accuracy_Micro": MultilabelAccuracy(average="micro", **common),
            "F1_Score": MultilabelF1Score(average="macro", **common),
            "Precision": MultilabelPrecision(average="macro", **common),
            "Recall": MultilabelRecall(average="macro", **common),
            "AUROC": MultilabelAUROC(average="macro", **common),
            "Class_Accuracy": ClasswiseWrapper(
                MultilabelAccuracy(average=None, **common), labels=labels, prefix="Class_Accuracy_"
            ),
            "Class_F1": ClasswiseWrapper(
                MultilabelF1Score(average=None, **common), labels=labels, prefix="Class_F1_"
            ),
        }
    )


def confusion_matrix(num_classes: int, ignore_index: int | None) -> Metric:
    """Confusion matrix (rows: true class, columns: predicted class), counts not normalised."""
    return MulticlassConfusionMatrix(num_classes=num_classes, ignore_index=ignore_index, validate_args=False)


class ReconstructionErrors(Metric):
    """``RMSE``, ``MSE`` and ``MAE`` of a masked autoencoder's pixels, summed over batches (and ranks)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("squared", "absolute", "count"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, out: Any, ignore_value: float | None, hidden_only: bool) -> None:
        from geoft.models.mae import patch_errors

        squared, absolute, weight = patch_errors(out, ignore_value, hidden_only)
        self.squared += (squared.detach() * weight).sum().double()
        self.absolute += (absolute.detach() * weight).sum().double()
        self.count += weight.sum().double()

    def compute(self) -> dict[str, torch.Tensor]:
        count = self.count.clamp_min(1.0)
        mse = self.squared / count
        return {"RMSE": mse.sqrt().float(), "MSE": mse.float(), "MAE": (self.absolute / count).float()}


__all__ = [
    "ReconstructionErrors",
    "classification_metrics",
    "confusion_matrix",
    "multilabel_metrics",
    "regression_metrics",
    "scalar_regression_metrics",
    "segmentation_metrics",
]
