"""UNet decoder on any feature pyramid, built on segmentation-models-pytorch's ``UnetDecoder``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.decoders.base import as_channel_list, check_image_features


class UNetDecoder(nn.Module):
    """UNet decoder blocks (upsample, concatenate the skip, two 3x3 convs) from deep to shallow.

    smp's decoder treats its first feature as an input-resolution skip it never uses, so the
    shallowest feature is passed twice: every feature given here is used.

    Args:
        embed_dim: channels of each input feature (shallow to deep).
        channels: output width of each decoder block (one per feature); default halves from 256.
        use_batchnorm: normalisation in the blocks (smp's ``use_norm``: True/False/"batchnorm"/...).
        attention_type: None or "scse".
    """

    includes_head = False
    multi_scale = True

    def __init__(
        self,
        embed_dim: Sequence[int],
        channels: Sequence[int] | None = None,
        use_batchnorm: bool | str | dict[str, Any] = "batchnorm",
        attention_type: str | None = None,
    ) -> None:
        super().__init__()
        from segmentation_models_pytorch.base.initialization import initialize_decoder
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder

        dims = as_channel_list(embed_dim, "UNetDecoder")
        blocks = list(channels) if channels is not None else [max(16, 256 >> i) for i in range(len(dims))]
        if len(blocks) != len(dims):
            raise ConfigError(
                f"UNetDecoder: channels has {len(blocks)} entries but there are {len(dims)} features",
                hint="give one decoder width per feature, e.g. channels: [256, 128, 64, 32]",
            )
        self.decoder = UnetDecoder(
            encoder_channels=[dims[0], *dims],
            decoder_channels=blocks,
            n_blocks=len(blocks),
            use_norm=use_batchnorm,
            add_center_block=False,
            attention_type=attention_type,
        )
        initialize_decoder(self.decoder)
        self.out_channels = blocks[-1]

    def forward(self, features: list[Tensor]) -> Tensor:
        check_image_features(features, "UNetDecoder")
        return self.decoder([features[0], *features])
