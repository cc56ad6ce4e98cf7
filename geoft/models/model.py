"""The contract every geoft model follows, and the factory protocol tasks build models with."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@dataclass
class ModelOutput:
    """What a model's ``forward`` returns.

    Attributes:
        output: the main prediction: ``[B, num_classes, H, W]`` for segmentation, ``[B, H, W]`` for
            pixel-wise regression, ``[B, num_classes]`` for classification.
        auxiliary_heads: outputs of auxiliary heads by name (same layout as ``output``).
    """

    output: torch.Tensor
    auxiliary_heads: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class AuxiliaryHead:
    """An extra decoder+head trained alongside the main one (deep supervision).

    Args:
        name: key in :attr:`ModelOutput.auxiliary_heads` and in the task's ``aux_loss`` weights.
        decoder: decoder registry name.
        decoder_args: keyword arguments for that decoder; ``head_*`` keys go to its head.
    """

    name: str
    decoder: str
    decoder_args: dict[str, Any] = field(default_factory=dict)


class Model(nn.Module, ABC):
    """Abstract geoft model: an encoder, a decoder, and a forward that returns :class:`ModelOutput`."""

    @abstractmethod
    def freeze_encoder(self) -> None:
        """Stop gradients through the encoder (backbone)."""

    @abstractmethod
    def freeze_decoder(self) -> None:
        """Stop gradients through the decoder (neck chain and decoder, not the head)."""

    def freeze_head(self) -> None:
        """Stop gradients through the head(s). Models without a separate head do nothing."""

    @abstractmethod
    def forward(self, x: torch.Tensor, **kwargs: Any) -> ModelOutput:
        """Run the model on ``x`` (``[B, C, H, W]`` or ``[B, C, T, H, W]``)."""


@runtime_checkable
class ModelFactory(Protocol):
    """Anything with ``build_model(task, ...)`` returning a :class:`Model`."""

    def build_model(self, task: str, **kwargs: Any) -> Model: ...


def freeze_module(module: nn.Module) -> None:
    """Set ``requires_grad=False`` on every parameter of ``module``."""
    for param in module.parameters():
        param.requires_grad_(False)
