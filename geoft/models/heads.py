"""Heads: map a decoder's output to the task's prediction.

* :class:`SegmentationHead`: ``[B, C, h, w] -> [B, num_classes, h, w]`` logits.
* :class:`RegressionHead`: ``[B, C, h, w] -> [B, num_outputs, h, w]``.
* :class:`ClassificationHead`: ``[B, C]`` or ``[B, C, h, w]`` -> ``[B, num_classes]`` logits.

Argument names follow the reference (TerraTorch) so its ``head_*`` config keys carry over.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.registry import import_object

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leakyrelu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def build_activation(name: str | nn.Module | None) -> nn.Module:
    """An activation from a name (``"relu"``, ``"Softplus"``, ``"torch.nn.ReLU"``), a module, or None."""
    if name is None:
        return nn.Identity()
    if isinstance(name, nn.Module):
        return name
    if not isinstance(name, str):
        raise ConfigError(f"final_act must be a name such as 'relu' or 'torch.nn.Softplus', got {name!r}")
    key = name.lower().replace("_", "")
    if key in _ACTIVATIONS:
        return _ACTIVATIONS[key]()
    if "." in name:
        try:
            cls = import_object(name)
        except (ImportError, ConfigError) as err:
            raise ConfigError(f"final_act {name!r} cannot be imported: {err}") from err
        return cls()
    if isinstance(getattr(nn, name, None), type) and issubclass(getattr(nn, name), nn.Module):
        return getattr(nn, name)()
    close = difflib.get_close_matches(key, list(_ACTIVATIONS), n=3)
    raise ConfigError(
        f"unknown final_act {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""),
        hint=f"use one of {', '.join(_ACTIVATIONS)}, a torch.nn class name, or a dotted import path",
    )


def _dropout(p: float, two_d: bool) -> nn.Module:
    if not 0 <= p < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {p}")
    if p == 0:
        return nn.Identity()
    return nn.Dropout2d(p) if two_d else nn.Dropout(p)


def _conv_blocks(
    in_channels: int, channel_list: Sequence[int] | None, batch_norm: bool
) -> tuple[nn.Module, int]:
    if not channel_list:
        return nn.Identity(), in_channels
    layers: list[nn.Module] = []
    for out in channel_list:
        layers.append(nn.Conv2d(in_channels, out, kernel_size=3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        in_channels = out
    return nn.Sequential(*layers), in_channels


class SegmentationHead(nn.Module):
    """Optional 3x3 conv blocks (``channel_list``), dropout, then a 1x1 conv to ``num_classes``."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channel_list: Sequence[int] | None = None,
        dropout: float = 0.0,
        final_act: str | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"SegmentationHead: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        pre, channels = _conv_blocks(in_channels, channel_list, batch_norm=False)
        self.head = nn.Sequential(
            pre, _dropout(dropout, two_d=True), nn.Conv2d(channels, num_classes, kernel_size=1)
        )
        self.final_act = build_activation(final_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.final_act(self.head(x))


class _PixelShuffleUp(nn.Sequential):
    """Learned 2x upsampling: conv to 4x channels, pixel shuffle, batch norm, ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, channels * 4, kernel_size=3, padding=1),
            nn.PixelShuffle(2),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )


class RegressionHead(nn.Module):
    """Pixel-wise regression: optional learned 2x upsamplings and conv blocks, then a 1x1 conv."""

    def __init__(
        self,
        in_channels: int,
        num_outputs: int = 1,
        final_act: str | None = None,
        learned_upscale_layers: int = 0,
        channel_list: Sequence[int] | None = None,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_outputs < 1:
            raise ConfigError(f"RegressionHead: num_outputs must be >= 1, got {num_outputs}")
        self.num_outputs = num_outputs
        ups = [_PixelShuffleUp(in_channels) for _ in range(learned_upscale_layers)]
        pre, channels = _conv_blocks(in_channels, channel_list, batch_norm=batch_norm)
        self.head = nn.Sequential(
            *ups, pre, _dropout(dropout, two_d=True), nn.Conv2d(channels, num_outputs, kernel_size=1)
        )
        self.final_act = build_activation(final_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.final_act(self.head(x))


class ClassificationHead(nn.Module):
    """Linear classifier over a vector or a pooled feature map.

    Args:
        in_dim: input channels.
        num_classes: output logits.
        dim_list: hidden layer widths (Linear + ReLU each); ``channel_list`` is accepted as a synonym.
        dropout: dropout before the last layer.
        linear_after_pool: for ``[B, C, h, w]`` input, pool first then classify (otherwise classify
            every location and average the logits, as the reference does).
        final_act: activation on the logits (normally None: losses expect logits).
    """

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        dim_list: Sequence[int] | None = None,
        dropout: float = 0.0,
        linear_after_pool: bool = False,
        final_act: str | None = None,
        channel_list: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if dim_list is not None and channel_list is not None:
            raise ConfigError("ClassificationHead: give dim_list or channel_list (the same thing), not both")
        hidden = list(dim_list if dim_list is not None else channel_list or [])
        if num_classes < 1:
            raise ConfigError(f"ClassificationHead: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.linear_after_pool = linear_after_pool
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        layers += [_dropout(dropout, two_d=False), nn.Linear(in_dim, num_classes)]
        self.head = nn.Sequential(*layers)
        self.final_act = build_activation(final_act)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            out = self.head(x)
        elif x.ndim == 4:
            flat = x.flatten(2).transpose(1, 2)  # [B, h*w, C]
            out = self.head(flat.mean(dim=1)) if self.linear_after_pool else self.head(flat).mean(dim=1)
        else:
            raise ConfigError(
                f"ClassificationHead expects [B, C] or [B, C, H, W], got shape {tuple(x.shape)}",
                hint="for ViT tokens add the AggregateTokens or ReshapeTokensToImage neck",
            )
        return self.final_act(out)


__all__ = ["ClassificationHead", "RegressionHead", "SegmentationHead", "build_activation"]
