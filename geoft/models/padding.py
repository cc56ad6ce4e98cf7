"""Pad inputs to a multiple of a patch size (or stride) and crop predictions back.

A ViT with 16-pixel patches cannot read a 250x250 chip; instead of failing, models pad it to
256x256 and crop the prediction to 250x250.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from geoft.errors import ConfigError, DataError

PADDING_MODES = ("reflect", "zero", "replicate", "none")


def check_padding_mode(mode: str) -> str:
    """Validate a padding mode name."""
    if mode not in PADDING_MODES:
        raise ConfigError(f"unknown padding {mode!r}; choose one of {', '.join(PADDING_MODES)}")
    return mode


def as_multiple(value: int | Sequence[int] | None) -> tuple[int, int] | None:
    """``16`` / ``(16, 16)`` / a ViT's ``(t, h, w)`` patch size -> ``(h, w)``; None stays None."""
    if value is None:
        return None
    if isinstance(value, int):
        pair = (value, value)
    else:
        values = [int(v) for v in value]
        if len(values) not in (2, 3):
            raise ConfigError(f"a patch size must be an int, (h, w) or (t, h, w); got {value!r}")
        pair = (values[-2], values[-1])
    if min(pair) < 1:
        raise ConfigError(f"patch size must be positive, got {value!r}")
    return pair


def pad_to_multiple(x: Tensor, multiple: tuple[int, int] | None, mode: str) -> Tensor:
    """Pad the last two dims of ``x`` (``[B, C, H, W]`` or ``[B, C, T, H, W]``) at the bottom/right."""
    if multiple is None or mode == "none":
        return x
    height, width = x.shape[-2:]
    pad_h = (-height) % multiple[0]
    pad_w = (-width) % multiple[1]
    if pad_h == 0 and pad_w == 0:
        return x
    if mode == "reflect" and (pad_h >= height or pad_w >= width):
        raise DataError(
            f"cannot reflect-pad a {height}x{width} image to a multiple of {multiple}: the image is smaller "
            "than the padding",
            hint="use padding='zero' or 'replicate', or larger images",
        )
    return pad_bottom_right(x, pad_h, pad_w, mode)


def pad_bottom_right(x: Tensor, pad_h: Any, pad_w: Any, mode: str) -> Tensor:
    """Pad the last two dims of ``[B, C, H, W]`` or ``[B, C, T, H, W]`` by ``pad_h``/``pad_w`` at the
    bottom/right, with no checks and no shortcut (so traced exports pad every input size)."""
    if mode == "zero":
        return F.pad(x, (0, pad_w, 0, pad_h))
    if x.ndim == 5:  # fold time into channels: 2-D reflect/replicate, which every exporter supports
        b, c, t, height, width = x.shape
        padded = F.pad(x.reshape(b, c * t, height, width), (0, pad_w, 0, pad_h), mode=mode)
        return padded.reshape(b, c, t, height + pad_h, width + pad_w)
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def find_patch_size(module: nn.Module) -> int | tuple[int, ...] | None:
    """The first ``patch_size`` (an int or a tuple of ints) of ``module`` or its submodules, else None.

    ViT backbones, timm models and their patch embeddings name it so; this is the one place that asks.
    """
    for part in module.modules():
        size = getattr(part, "patch_size", None)
        if isinstance(size, int) and not isinstance(size, bool):
            return size
        if isinstance(size, (list, tuple)) and size and all(isinstance(v, int) for v in size):
            return tuple(size)
    return None


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Keep the top-left ``size`` of the last two dims."""
    return x[..., : size[0], : size[1]]
