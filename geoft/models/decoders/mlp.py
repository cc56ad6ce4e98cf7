"""MLP decoder (SegFormer style): per-pixel linear layers over all features, fused at one resolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.decoders.base import as_channel_list, check_image_features, pick_index


class MLPDecoder(nn.Module):
    """Project every feature to ``channels`` with a 1x1 conv, resize to ``features[out_index]``'s size,
    concatenate, and fuse with a 1x1 conv + BatchNorm + ``activation`` (a ``torch.nn`` class name).
    """

    includes_head = False
    multi_scale = False

    def __init__(
        self, embed_dim: Sequence[int], channels: int = 256, activation: str = "ReLU", out_index: int = -1
    ) -> None:
        super().__init__()
        dims = as_channel_list(embed_dim, "MLPDecoder")
        self.out_index = pick_index(dims, out_index, "MLPDecoder", "out_index")
        act = getattr(nn, activation, None)
        if not (isinstance(act, type) and issubclass(act, nn.Module)):
            raise ConfigError(
                f"MLPDecoder: activation {activation!r} is not a torch.nn class (e.g. ReLU, GELU)"
            )
        self.proj = nn.ModuleList(nn.Conv2d(d, channels, kernel_size=1) for d in dims)
        self.fuse = nn.Sequential(
            nn.Conv2d(channels * len(dims), channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(channels),
            act(),
        )
        self.out_channels = channels

    def forward(self, features: list[Tensor]) -> Tensor:
        check_image_features(features, "MLPDecoder")
        size = features[self.out_index].shape[-2:]
        projected = [
            F.interpolate(p(f), size=size, mode="bilinear", align_corners=False)
            if f.shape[-2:] != size
            else p(f)
            for p, f in zip(self.proj, features)
        ]
        return self.fuse(torch.cat(projected, dim=1))
