"""The reference's deprecated model factories, kept so old configs mean the same model.

* ``PrithviModelFactory``: :class:`EncoderDecoderFactory` with a Prithvi backbone whose token
  outputs are reshaped to images for the decoder, as the old factory's
  ``prepare_features_for_image_model`` did (``necks: [ReshapeTokensToImage]``).
* ``GenericUnetModelFactory``: a plain UNet (segmentation-models-pytorch ``Unet`` with no
  pretrained encoder) through :class:`SMPModelFactory`.

Each logs one notice that says what to write instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from geoft.errors import ConfigError
from geoft.models.backbones.bands import BandLike
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.models.factories.smp import SMPModelFactory
from geoft.models.model import AuxiliaryHead, Model

logger = logging.getLogger(__name__)


class PrithviModelFactory:
    """Deprecated in the reference; builds what it built there (see the module docstring)."""

    def build_model(
        self,
        task: str,
        backbone: str,
        decoder: str,
        bands: Sequence[BandLike],
        in_channels: int | None = None,
        num_classes: int | None = None,
        pretrained: bool = True,
        num_frames: int = 1,
        aux_decoders: Sequence[AuxiliaryHead] | None = None,
        rescale: bool = True,
        **prefixed: Any,
    ) -> Model:
        if not isinstance(backbone, str) or not backbone.startswith("prithvi"):
            raise ConfigError(
                f"PrithviModelFactory builds Prithvi backbones only, not {backbone!r}",
                hint="use model_factory: EncoderDecoderFactory",
            )
        if in_channels is not None and in_channels != len(bands):
            raise ConfigError(f"model_args.in_channels is {in_channels} but bands lists {len(bands)} bands")
        logger.warning(
            "model_factory PrithviModelFactory is deprecated: building EncoderDecoderFactory with "
            "backbone_bands, backbone_pretrained, backbone_num_frames and necks [ReshapeTokensToImage]; "
            "write those in the config to silence this notice"
        )
        return EncoderDecoderFactory().build_model(
            task,
            backbone,
            decoder,
            num_classes=num_classes,
            necks=[{"name": "ReshapeTokensToImage"}],
            aux_decoders=aux_decoders,
            rescale=rescale,
            backbone_bands=list(bands),
            backbone_pretrained=pretrained,
            backbone_num_frames=num_frames,
            **prefixed,
        )


class GenericUnetModelFactory:
    """Deprecated in the reference; a UNet from scratch (see the module docstring)."""

    def build_model(
        self,
        task: str = "segmentation",
        in_channels: int = 6,
        num_classes: int | None = None,
        pretrained: bool | str = False,
        regression_relu: bool = False,
        backbone: str = "resnet34",
        **model_kwargs: Any,
    ) -> Model:
        if task not in ("segmentation", "regression"):
            raise ConfigError(f"GenericUnetModelFactory builds pixel-wise models only, not task {task!r}")
        if regression_relu:
            raise ConfigError(
                "GenericUnetModelFactory: regression_relu is not supported",
                hint="clip the targets or use a non-negative loss",
            )
        logger.warning(
            "model_factory GenericUnetModelFactory is deprecated: building SMPModelFactory model: Unet "
            "(backbone %s); write model_factory: SMPModelFactory to silence this notice",
            backbone,
        )
        return SMPModelFactory().build_model(
            task,
            backbone=backbone,
            model="Unet",
            in_channels=in_channels,
            num_classes=num_classes,
            pretrained=pretrained,
            **model_kwargs,
        )
