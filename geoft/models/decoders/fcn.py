"""Fully convolutional decoder: a stack of learned 2x upsampling blocks on one feature."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.decoders.base import as_channel_list, check_image_features, pick_index


class _ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dimension of ``[B, C, H, W]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


class FCNDecoder(nn.Module):
    """``num_convs`` blocks of (2x transposed conv, 3x3 conv, LayerNorm, GELU) on ``features[in_index]``.

    Each block doubles the resolution, so 4 blocks bring a patch-16 ViT back to full size.
    """

    includes_head = False
    multi_scale = False

    def __init__(
        self, embed_dim: Sequence[int], channels: int = 256, num_convs: int = 4, in_index: int = -1
    ) -> None:
        super().__init__()
        dims = as_channel_list(embed_dim, "FCNDecoder")
        if num_convs < 1:
            raise ConfigError(f"FCNDecoder: num_convs must be >= 1, got {num_convs}")
        self.in_index = pick_index(dims, in_index, "FCNDecoder")
        blocks = []
        in_ch = dims[self.in_index]
        for _ in range(num_convs):
            blocks.append(
                nn.Sequential(
                    nn.ConvTranspose2d(in_ch, channels, kernel_size=2, stride=2),
                    nn.Conv2d(channels, channels, kernel_size=3, padding=1),
                    _ChannelLayerNorm(channels),
                    nn.GELU(),
                )
            )
            in_ch = channels
        self.convs = nn.Sequential(*blocks)
        self.out_channels = channels

    def forward(self, features: list[Tensor]) -> Tensor:
        check_image_features(features[self.in_index : self.in_index + 1], "FCNDecoder")
        return self.convs(features[self.in_index])
