"""Linear decoder: one transposed conv from a feature straight to class logits (includes the head)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.decoders.base import as_channel_list, check_image_features, pick_index


class LinearDecoder(nn.Module):
    """``ConvTranspose2d(kernel=stride=upsampling_size)`` from ``features[in_index]`` to ``num_classes``.

    With ``upsampling_size`` equal to the ViT patch size the output has the input's resolution;
    otherwise the model's ``rescale`` interpolates it.
    """

    includes_head = True
    multi_scale = False

    def __init__(
        self, embed_dim: Sequence[int], num_classes: int, upsampling_size: int = 1, in_index: int = -1
    ):
        super().__init__()
        dims = as_channel_list(embed_dim, "LinearDecoder")
        if num_classes < 1 or upsampling_size < 1:
            raise ConfigError(
                f"LinearDecoder: num_classes and upsampling_size must be >= 1, got {num_classes}, {upsampling_size}"
            )
        self.in_index = pick_index(dims, in_index, "LinearDecoder")
        self.num_classes = num_classes
        self.conv = nn.ConvTranspose2d(
            dims[self.in_index], num_classes, upsampling_size, stride=upsampling_size
        )
        self.out_channels = num_classes

    def forward(self, features: list[Tensor]) -> Tensor:
        check_image_features(features[self.in_index : self.in_index + 1], "LinearDecoder")
        return self.conv(features[self.in_index])
