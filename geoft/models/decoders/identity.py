"""Identity decoder: hand one feature straight to the head."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from geoft.models.decoders.base import as_channel_list, pick_index


class IdentityDecoder(nn.Module):
    """Return ``features[out_index]`` unchanged (e.g. for a linear probe)."""

    includes_head = False
    multi_scale = False
    accepts_tokens = True

    def __init__(self, embed_dim: Sequence[int], out_index: int = -1) -> None:
        super().__init__()
        dims = as_channel_list(embed_dim, "IdentityDecoder")
        self.out_index = pick_index(dims, out_index, "IdentityDecoder", "out_index")
        self.out_channels = dims[self.out_index]

    def forward(self, features: list[Tensor]) -> Tensor:
        return features[self.out_index]
