"""UperNet decoder: pyramid pooling on the deepest feature plus an FPN over all features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.decoders.base import ConvBNReLU, as_channel_list, check_image_features
from geoft.models.necks import LearnedInterpolateToPyramidal
from geoft.models.tracing import AdaptiveAvgPool2d


class _PoolingPyramid(nn.Module):
    """PSP module: average-pool the input to each scale, 1x1 conv, upsample back, concatenate."""

    def __init__(
        self, in_channels: int, channels: int, pool_scales: Sequence[int], align_corners: bool
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        # no BatchNorm here: scale 1 pools to one pixel, where it fails for batch size 1 in training
        self.stages = nn.ModuleList(
            nn.Sequential(
                AdaptiveAvgPool2d(s),
                nn.Conv2d(in_channels, channels, 1),
                nn.ReLU(inplace=True),
            )
            for s in pool_scales
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        size = x.shape[-2:]
        return [
            F.interpolate(stage(x), size=size, mode="bilinear", align_corners=self.align_corners)
            for stage in self.stages
        ]


class UperNetDecoder(nn.Module):
    """UperNet (Xiao et al. 2018): PPM on ``features[-1]``, lateral 1x1 convs, top-down FPN, fusion.

    Output resolution is that of ``features[0]``.

    Args:
        embed_dim: channels of each input feature (shallow to deep).
        pool_scales: output sizes of the pyramid pooling branches.
        channels: width of the decoder and of its output.
        align_corners: for the bilinear resizes.
        scale_modules: first rescale exactly four same-size inputs (plain ViT features) 4x / 2x / 1x /
            0.5x with learned layers, as the LearnedInterpolateToPyramidal neck does.
    """

    includes_head = False
    multi_scale = True

    def __init__(
        self,
        embed_dim: Sequence[int],
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        channels: int = 256,
        align_corners: bool = True,
        scale_modules: bool = False,
    ) -> None:
        super().__init__()
        dims = as_channel_list(embed_dim, "UperNetDecoder")
        self.scale = LearnedInterpolateToPyramidal(dims) if scale_modules else None
        if self.scale is not None:
            dims = self.scale.process_channel_list(dims)
        if not pool_scales or any(s < 1 for s in pool_scales):
            raise ConfigError(f"UperNetDecoder: pool_scales must be positive, got {list(pool_scales)}")
        self.align_corners = align_corners
        self.psp = _PoolingPyramid(dims[-1], channels, pool_scales, align_corners)
        self.psp_bottleneck = ConvBNReLU(dims[-1] + len(pool_scales) * channels, channels, 3, padding=1)
        self.lateral_convs = nn.ModuleList(ConvBNReLU(d, channels, 1) for d in dims[:-1])
        self.fpn_convs = nn.ModuleList(ConvBNReLU(channels, channels, 3, padding=1) for _ in dims[:-1])
        self.fpn_bottleneck = ConvBNReLU(len(dims) * channels, channels, 3, padding=1)
        self.out_channels = channels
        self.num_inputs = len(dims)

    def _resize(self, x: Tensor, size: torch.Size) -> Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.align_corners)

    def forward(self, features: list[Tensor]) -> Tensor:
        if len(features) != self.num_inputs:
            raise ConfigError(f"UperNetDecoder was built for {self.num_inputs} features, got {len(features)}")
        check_image_features(features, "UperNetDecoder")
        if self.scale is not None:
            features = self.scale(list(features))
        top = features[-1]
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features[:-1])]
        laterals.append(self.psp_bottleneck(torch.cat([top, *self.psp(top)], dim=1)))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + self._resize(laterals[i], laterals[i - 1].shape[-2:])
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals[:-1])]
        outs.append(laterals[-1])
        size = outs[0].shape[-2:]
        outs = [outs[0], *(self._resize(o, size) for o in outs[1:])]
        return self.fpn_bottleneck(torch.cat(outs, dim=1))
