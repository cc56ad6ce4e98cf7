"""Pieces shared by geoft's decoders.

Decoder contract (docs/architecture.md): first argument ``embed_dim: list[int]`` (channels of the
features after the necks), attribute ``out_channels: int``, ``forward(features) -> Tensor``.
Class attributes tell the factory how to wire a decoder:

* ``includes_head``: the decoder already produces the task's output (takes ``num_classes``).
* ``multi_scale``: the decoder fuses several feature resolutions (a ViT then gets a pyramid neck).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from geoft.errors import ConfigError


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, padding: int = 0, dilation: int = 1
    ):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def as_channel_list(embed_dim: Sequence[int] | int, decoder: str) -> list[int]:
    """Validate ``embed_dim`` (a list of positive ints; a bare int is one feature)."""
    dims = [embed_dim] if isinstance(embed_dim, int) else list(embed_dim)
    if not dims or any(not isinstance(d, int) or d < 1 for d in dims):
        raise ConfigError(
            f"{decoder}: embed_dim must be a non-empty list of positive channel counts, got {embed_dim!r}"
        )
    return dims


def pick_index(dims: list[int], index: int, decoder: str, arg: str = "in_index") -> int:
    """Check that ``index`` addresses one of ``dims``; return it normalised to >= 0."""
    if not -len(dims) <= index < len(dims):
        raise ConfigError(
            f"{decoder}: {arg}={index} is out of range for {len(dims)} features (channels {dims})"
        )
    return index % len(dims)


def check_image_features(features: Sequence[Tensor], decoder: str) -> None:
    """Decoders here need image features ``[B, C, H, W]``; say which neck fixes token input."""
    for i, f in enumerate(features):
        if f.ndim != 4:
            raise ConfigError(
                f"{decoder} needs image features [B, C, H, W]; feature {i} has shape {tuple(f.shape)}",
                hint="for a ViT backbone add the ReshapeTokensToImage neck (the factory adds it when necks is unset)",
            )
