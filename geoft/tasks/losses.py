"""Loss functions by name for every task, all working with and without ``ignore_index``.

``build_criterion(task, loss, ...)`` turns a config value into a callable ``criterion(pred, target)``:

* a name (``"ce"``) -> one loss;
* a list (``["ce", "dice"]``) -> their sum;
* a dict (``{"ce": 1.0, "dice": 0.5}``) -> their weighted sum;
* an ``nn.Module`` -> used as it is.

Combined losses return a dict with the total under ``"loss"`` and each part under its name, so the
loss handler can log them. Every built-in loss computes in float32 (safe under bf16 autocast).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind

LossSpec = str | Sequence[str] | Mapping[str, float] | nn.Module

# The losses each task understands, in the order they are listed in messages.
REGRESSION_LOSSES = ("mse", "mae", "rmse", "huber")
KIND_LOSSES: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.SEGMENTATION: ("ce", "dice", "focal", "jaccard", "lovasz"),
    TaskKind.REGRESSION: REGRESSION_LOSSES,
    TaskKind.CLASSIFICATION: ("ce", "bce", "focal"),
    TaskKind.MULTILABEL_CLASSIFICATION: ("bce", "balanced_bce"),
    TaskKind.SCALAR_REGRESSION: REGRESSION_LOSSES,
}
# The same table by the short names earlier releases published (``multilabel``); scalar regression
# takes regression's losses.
TASK_LOSSES: dict[str, tuple[str, ...]] = {
    "multilabel" if kind is TaskKind.MULTILABEL_CLASSIFICATION else kind.value: KIND_LOSSES[kind]
    for kind in (
        TaskKind.SEGMENTATION,
        TaskKind.REGRESSION,
        TaskKind.CLASSIFICATION,
        TaskKind.MULTILABEL_CLASSIFICATION,
    )
}
# Losses that accept ``class_weights``.
WEIGHTED_LOSSES: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.SEGMENTATION: ("ce",),
    TaskKind.REGRESSION: (),
    TaskKind.CLASSIFICATION: ("ce", "bce"),
    TaskKind.MULTILABEL_CLASSIFICATION: ("bce",),
    TaskKind.SCALAR_REGRESSION: (),
}


def valid_mask(target: Tensor, ignore_index: int | None) -> Tensor:
    """Boolean mask of target entries that count: not ``ignore_index`` and not NaN."""
    mask = torch.ones_like(target, dtype=torch.bool)
    if target.is_floating_point():
        mask &= ~torch.isnan(target)
    if ignore_index is not None:
        mask &= target != ignore_index
    return mask


class CrossEntropy(nn.Module):
    """Cross-entropy where ``ignore_index=None`` means "ignore nothing" (torch needs an int)."""

    def __init__(self, ignore_index: int | None = None, weight: Tensor | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        target = target.long()
        if self.ignore_index is None:
            return F.cross_entropy(pred.float(), target, weight=self.weight)
        mask = target != self.ignore_index
        if not mask.any():  # everything ignored: zero loss that keeps the graph
            return pred.float().sum() * 0.0
        return F.cross_entropy(pred.float(), target, weight=self.weight, ignore_index=self.ignore_index)


class SMPLoss(nn.Module):
    """A segmentation-models-pytorch multiclass loss, fed float32 logits and long targets."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.loss(pred.float(), target.long())


class MaskedRegressionLoss(nn.Module):
    """Pixel-wise regression loss averaged over valid pixels only (ignore_index and NaN targets dropped).

    Args:
        kind: ``"mse"``, ``"mae"``, ``"rmse"`` or ``"huber"``.
        ignore_index: target value to ignore, or None.
        huber_delta: threshold of the Huber loss.
    """

    def __init__(self, kind: str, ignore_index: int | None = None, huber_delta: float = 1.0) -> None:
        super().__init__()
        self.kind = kind
        self.ignore_index = ignore_index
        self.huber_delta = huber_delta

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred = pred.float()
        if pred.ndim == target.ndim + 1 and pred.shape[1] == 1:
            pred = pred.squeeze(1)
        target = target.float()
        mask = valid_mask(target, self.ignore_index)
        # Fill invalid targets so that NaN never reaches the graph (NaN * 0 is still NaN in backward).
        filled = torch.where(mask, target, pred.detach())
        if self.kind in ("mse", "rmse"):
            per_pixel = (pred - filled) ** 2
        elif self.kind == "mae":
            per_pixel = (pred - filled).abs()
        else:
            per_pixel = F.huber_loss(pred, filled, reduction="none", delta=self.huber_delta)
        count = mask.sum()
        if count == 0:
            return pred.sum() * 0.0
        mean = (per_pixel * mask).sum() / count
        # The root comes after the masked mean (the mean of per-pixel roots would be MAE).
        return torch.sqrt(mean + 1e-12) if self.kind == "rmse" else mean


class SingleLabelBCE(nn.Module):
    """Binary cross-entropy on one-hot single-label targets (``[B, C]`` logits, ``[B]`` labels)."""

    def __init__(self, ignore_index: int | None = None, weight: Tensor | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred = pred.float()
        keep = valid_mask(target, self.ignore_index)
        if not keep.any():
            return pred.sum() * 0.0
        pred, target = pred[keep], target[keep].long()
        one_hot = F.one_hot(target, pred.shape[1]).float()
        return F.binary_cross_entropy_with_logits(pred, one_hot, weight=self.weight)


class MultiLabelBCE(nn.Module):
    """Binary cross-entropy on multi-hot targets; entries equal to ``ignore_index`` (or NaN) do not count.

    Args:
        balanced: average positives and negatives separately and add them (helps rare labels).
    """

    def __init__(
        self, ignore_index: int | None = None, weight: Tensor | None = None, balanced: bool = False
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.balanced = balanced
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred = pred.float()
        target = target.float()
        mask = valid_mask(target, self.ignore_index)
        filled = torch.where(mask, target, torch.zeros_like(target))
        per_entry = F.binary_cross_entropy_with_logits(pred, filled, reduction="none")
        if self.weight is not None:
            per_entry = per_entry * self.weight
        if not self.balanced:
            count = mask.sum()
            return (per_entry * mask).sum() / count if count > 0 else pred.sum() * 0.0
        total = pred.sum() * 0.0
        for positive in (True, False):
            part = mask & ((filled == 1) if positive else (filled == 0))
            if part.any():
                total = total + (per_entry * part).sum() / part.sum()
        return total


class CombinedLoss(nn.Module):
    """Weighted sum of named losses. Returns ``{"loss": total, name: part, ...}``."""

    def __init__(
        self, losses: Mapping[str, Callable[[Tensor, Tensor], Tensor]], weights: Mapping[str, float]
    ):
        super().__init__()
        self.losses = nn.ModuleDict(dict(losses))
        self.weights = dict(weights)

    def forward(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        parts = {name: loss(pred, target) for name, loss in self.losses.items()}
        total = sum(self.weights[name] * value for name, value in parts.items())
        return {"loss": total, **parts}


def _one_loss(task: TaskKind, name: str, ignore_index: int | None, weight: Tensor | None) -> nn.Module:
    """Build the loss ``name`` for ``task``; ``weight`` is None unless the loss takes class weights."""
    if task is TaskKind.SEGMENTATION:
        if name == "ce":
            return CrossEntropy(ignore_index, weight)
        if name == "dice":
            return SMPLoss(smp.losses.DiceLoss("multiclass", ignore_index=ignore_index))
        if name == "focal":
            return SMPLoss(smp.losses.FocalLoss("multiclass", ignore_index=ignore_index, normalized=True))
        if name == "jaccard":
            return SMPLoss(smp.losses.JaccardLoss("multiclass", ignore_index=ignore_index))
        if name == "lovasz":
            return SMPLoss(smp.losses.LovaszLoss("multiclass", ignore_index=ignore_index))
    elif task in (TaskKind.REGRESSION, TaskKind.SCALAR_REGRESSION):
        return MaskedRegressionLoss(name, ignore_index)
    elif task is TaskKind.CLASSIFICATION:
        if name == "ce":
            return CrossEntropy(ignore_index, weight)
        if name == "bce":
            return SingleLabelBCE(ignore_index, weight)
        if name == "focal":
            return SMPLoss(smp.losses.FocalLoss("multiclass", ignore_index=ignore_index, normalized=True))
    elif task is TaskKind.MULTILABEL_CLASSIFICATION:
        return MultiLabelBCE(ignore_index, weight, balanced=name == "balanced_bce")
    raise ConfigError(f"no loss {name!r} for task {task!r}")  # unreachable after validation


def build_criterion(
    task: TaskKind | str,
    loss: LossSpec,
    ignore_index: int | None = None,
    class_weights: Sequence[float] | None = None,
) -> nn.Module:
    """Build the criterion for ``task`` (a :class:`~geoft.task_kinds.TaskKind` or its name).

    Raises:
        ConfigError: unknown loss name, empty combination, negative weights, or ``class_weights`` given
            while none of the chosen losses can use them.
    """
    task = TaskKind.parse(task, KIND_LOSSES, "build_criterion")
    if isinstance(loss, nn.Module):
        return loss
    if isinstance(loss, str):
        weights = {loss: 1.0}
    elif isinstance(loss, Mapping):
        weights = {str(k): float(v) for k, v in loss.items()}
    elif isinstance(loss, Sequence):
        weights = {str(k): 1.0 for k in loss}
    else:
        raise ConfigError(
            f"loss must be a name, a list of names, a dict name -> weight or an nn.Module; got {type(loss).__name__}"
        )
    if not weights:
        raise ConfigError("loss is empty", hint=f"use one of {', '.join(KIND_LOSSES[task])}")
    valid = KIND_LOSSES[task]
    unknown = [name for name in weights if name not in valid]
    if unknown:
        raise ConfigError(
            f"unknown {task} loss {', '.join(map(repr, unknown))}; valid names are: {', '.join(valid)}",
            hint="a list sums losses, a dict weights them, e.g. loss: {ce: 1.0, dice: 0.5}",
        )
    if any(w < 0 for w in weights.values()):
        raise ConfigError(f"loss weights must be >= 0, got {weights}")
    weight_tensor = None
    if class_weights is not None:
        takes = [name for name in weights if name in WEIGHTED_LOSSES[task]]
        if not takes:
            raise ConfigError(
                f"class_weights were given but none of the losses {list(weights)} uses them",
                hint=f"for {task}, class weights apply to: {', '.join(WEIGHTED_LOSSES[task]) or 'no loss'}",
            )
        weight_tensor = torch.tensor([float(w) for w in class_weights], dtype=torch.float32)
    built = {
        name: _one_loss(task, name, ignore_index, weight_tensor if name in WEIGHTED_LOSSES[task] else None)
        for name in weights
    }
    if len(built) == 1 and next(iter(weights.values())) == 1.0:
        return next(iter(built.values()))
    return CombinedLoss(built, weights)


__all__ = [
    "KIND_LOSSES",
    "TASK_LOSSES",
    "CombinedLoss",
    "CrossEntropy",
    "MaskedRegressionLoss",
    "MultiLabelBCE",
    "SingleLabelBCE",
    "build_criterion",
    "valid_mask",
]
