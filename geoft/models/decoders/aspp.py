"""ASPP decoder (DeepLabV3): atrous spatial pyramid pooling on one feature; and the reference's ASPP
heads (``ASPPSegmentationHead``, ``ASPPRegressionHead``), which end in their own 1x1 conv."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.decoders.base import ConvBNReLU, as_channel_list, check_image_features, pick_index


class ASPPDecoder(nn.Module):
    """Image pooling + one branch per dilation rate, concatenated and fused by a 3x3 conv.

    Args:
        embed_dim: channels of the input features.
        dilations: dilation rate per branch (1 gives a 1x1 conv).
        channels: width of every branch and of the output.
        in_index: which feature to decode.
        dropout: dropout on the fused output.
        align_corners: for the interpolation of the pooled branch.
    """

    includes_head = False
    multi_scale = False

    def __init__(
        self,
        embed_dim: Sequence[int],
        dilations: Sequence[int] = (1, 6, 12, 18),
        channels: int = 256,
        in_index: int = -1,
        dropout: float = 0.1,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        dims = as_channel_list(embed_dim, "ASPPDecoder")
        if not dilations or any(d < 1 for d in dilations):
            raise ConfigError(f"ASPPDecoder: dilations must be positive integers, got {list(dilations)}")
        if not 0 <= dropout < 1:
            raise ConfigError(f"ASPPDecoder: dropout must be in [0, 1), got {dropout}")
        self.in_index = pick_index(dims, in_index, "ASPPDecoder")
        self.align_corners = align_corners
        in_ch = dims[self.in_index]
        # no BatchNorm on the 1x1 pooled map: it fails for batch size 1 in training
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, channels, 1), nn.ReLU(inplace=True)
        )
        self.branches = nn.ModuleList(
            ConvBNReLU(in_ch, channels, 1)
            if d == 1
            else ConvBNReLU(in_ch, channels, 3, padding=d, dilation=d)
            for d in dilations
        )
        self.bottleneck = ConvBNReLU((len(dilations) + 1) * channels, channels, 3, padding=1)
        self.dropout = nn.Dropout2d(dropout) if dropout else nn.Identity()
        self.out_channels = channels

    def forward(self, features: list[Tensor]) -> Tensor:
        check_image_features(features[self.in_index : self.in_index + 1], "ASPPDecoder")
        x = features[self.in_index]
        pooled = F.interpolate(
            self.image_pool(x), size=x.shape[-2:], mode="bilinear", align_corners=self.align_corners
        )
        outs = [pooled, *(branch(x) for branch in self.branches)]
        return self.dropout(self.bottleneck(torch.cat(outs, dim=1)))


class _ReferenceASPPHead(ASPPDecoder):
    """The reference's (TerraTorch's) ASPP heads: :class:`ASPPDecoder` with its argument names and a
    final 1x1 conv to ``outputs`` maps, named ``final`` as there. ``in_channels`` is read from the
    features (given, it must match); the dropout (``head_dropout_ratio``) comes before the final conv,
    as in the reference."""

    def __init__(
        self,
        embed_dim: Sequence[int],
        dilations: Sequence[int],
        in_channels: int | None,
        channels: int,
        align_corners: bool,
        head_dropout_ratio: float,
        input_transform: str | None,
        in_index: int,
        outputs: tuple[str, int],
    ) -> None:
        name = type(self).__name__
        if input_transform is not None:
            raise ConfigError(
                f"{name}: input_transform {input_transform!r} is not supported; it decodes one feature",
                hint="leave input_transform unset and pick the feature with in_index",
            )
        super().__init__(embed_dim, dilations, channels, in_index, head_dropout_ratio, align_corners)
        found = as_channel_list(embed_dim, name)[self.in_index]
        if in_channels is not None and in_channels != found:
            raise ConfigError(
                f"{name}: in_channels is {in_channels} but feature {in_index} has {found} channels",
                hint="leave in_channels unset (geoft reads it from the features)",
            )
        self.final_name, self.out_channels = outputs
        self.add_module(self.final_name, nn.Conv2d(channels, self.out_channels, kernel_size=1))

    def forward(self, features: list[Tensor]) -> Tensor:
        return getattr(self, self.final_name)(super().forward(features))


class ASPPSegmentationHead(_ReferenceASPPHead):
    """ASPP with its classifier (``conv_seg``): the class logits, so no separate head is added."""

    includes_head = True

    def __init__(
        self,
        embed_dim: Sequence[int],
        dilations: Sequence[int] = (1, 6, 12, 18),
        in_channels: int | None = None,
        channels: int = 256,
        num_classes: int = 2,
        align_corners: bool = False,
        head_dropout_ratio: float = 0.3,
        input_transform: str | None = None,
        in_index: int = -1,
    ) -> None:
        reference = (dilations, in_channels, channels, align_corners, head_dropout_ratio, input_transform)
        super().__init__(embed_dim, *reference, in_index, ("conv_seg", num_classes))


class ASPPRegressionHead(_ReferenceASPPHead):
    """ASPP ending in ``conv_reg`` to ``out_channels`` maps; the task's regression head follows, as
    the reference's factory adds one on the decoder's ``out_channels``."""

    def __init__(
        self,
        embed_dim: Sequence[int],
        dilations: Sequence[int] = (1, 6, 12, 18),
        in_channels: int | None = None,
        channels: int = 256,
        out_channels: int = 1,
        align_corners: bool = False,
        head_dropout_ratio: float = 0.3,
        input_transform: str | None = None,
        in_index: int = -1,
    ) -> None:
        reference = (dilations, in_channels, channels, align_corners, head_dropout_ratio, input_transform)
        super().__init__(embed_dim, *reference, in_index, ("conv_reg", out_channels))
