"""Clay1_5ModelFactory: the reference's Clay v1.5 factory name, building through EncoderDecoderFactory.

The reference's factory wraps the whole pre-training model (MAE decoder and distillation teacher
included) and returns its loss. Here the name builds what fine-tuning needs: a ``clay_mae_*``
encoder with necks, decoder and head, exactly as ``EncoderDecoderFactory`` does. The reference's
arguments carry over: ``bands``, ``pretrained``, ``checkpoint_path``, ``platform`` (Clay's sensor
names, giving the default bands, their wavelengths and the GSD) and ``in_channels`` (checked).
Pre-training-only arguments (mask ratio, teacher, MAE decoder sizes ...) are reported as unused.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from geoft.errors import ConfigError
from geoft.models.backbones.clay import CLAY_VARIANTS
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.models.model import AuxiliaryHead, Model

logger = logging.getLogger(__name__)

#: Clay's sensors (its metadata.yaml): band names, wavelengths (micrometres) and GSD (metres).
PLATFORMS: dict[str, tuple[tuple[str, ...], tuple[float, ...], float]] = {
    "sentinel-2-l2a": (
        ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16", "swir22"),
        (0.493, 0.56, 0.665, 0.704, 0.74, 0.783, 0.842, 0.865, 1.61, 2.19),
        10.0,
    ),
    "landsat-c2l1": (
        ("red", "green", "blue", "nir08", "swir16", "swir22"), (0.65, 0.56, 0.48, 0.86, 1.6, 2.2), 30.0
    ),
    "landsat-c2l2-sr": (
        ("red", "green", "blue", "nir08", "swir16", "swir22"), (0.65, 0.56, 0.48, 0.86, 1.6, 2.2), 30.0
    ),
    "naip": (("red", "green", "blue", "nir"), (0.65, 0.56, 0.48, 0.842), 1.0),
    "linz": (("red", "green", "blue"), (0.635, 0.555, 0.465), 0.5),
    "sentinel-1-rtc": (("vv", "vh"), (3.5, 4.0), 10.0),
}  # fmt: skip

_PRETRAINING_ONLY = (
    "mask_ratio", "norm_pix_loss", "shuffle", "metadata", "teacher", "dolls", "doll_weights", "batch_size",
    "decoder_dim", "decoder_depth", "decoder_heads", "decoder_dim_head", "decoder_mlp_ratio",
    "prepare_features_for_image_model",
)  # fmt: skip
_ENCODER_SIZE = {"dim": "embed_dim", "depth": "depth", "heads": "num_heads", "mlp_ratio": "mlp_ratio"}


class Clay1_5ModelFactory:  # noqa: N801 - the reference's name
    """Builds a Clay v1.5 encoder + decoder model for ``task`` (see the module docstring)."""

    def build_model(
        self,
        task: str,
        backbone: str | nn.Module = "clay_mae_large",
        decoder: str | nn.Module = "UperNetDecoder",
        num_classes: int | None = None,
        bands: Sequence[str] | None = None,
        in_channels: int | None = None,
        pretrained: bool = False,
        checkpoint_path: str | None = None,
        platform: str | None = None,
        num_frames: int = 1,
        necks: Sequence[Mapping[str, Any]] | None = None,
        aux_decoders: Sequence[AuxiliaryHead | Mapping[str, Any]] | None = None,
        rescale: bool = True,
        padding: str = "reflect",
        **extra: Any,
    ) -> Model:
        """Build the model; ``backbone_*``, ``decoder_*`` and ``head_*`` keywords go to that part."""
        if isinstance(backbone, str) and backbone.removeprefix("geoft_") not in CLAY_VARIANTS:
            raise ConfigError(
                f"Clay1_5ModelFactory builds Clay encoders; backbone {backbone!r} is not one of "
                f"{', '.join(CLAY_VARIANTS)}",
                hint="use EncoderDecoderFactory for other backbones",
            )
        if num_frames != 1:
            raise ConfigError(f"Clay takes single images; num_frames={num_frames} is not supported")
        unused = sorted(k for k in extra if k in _PRETRAINING_ONLY)
        if unused:
            warnings.warn(
                f"Clay1_5ModelFactory: {', '.join(unused)} configure Clay's pre-training (MAE decoder, "
                "teacher, masking) and are not used to fine-tune the encoder",
                UserWarning,
                stacklevel=2,
            )
        rest = {k: v for k, v in extra.items() if k not in _PRETRAINING_ONLY}
        backbone_args = self._backbone_args(
            backbone, rest, bands, in_channels, pretrained, checkpoint_path, platform
        )
        return EncoderDecoderFactory().build_model(
            task,
            backbone=backbone,
            decoder=decoder,
            num_classes=num_classes,
            necks=necks,
            aux_decoders=aux_decoders,
            rescale=rescale,
            padding=padding,
            **backbone_args,
            **rest,
        )

    @staticmethod
    def _backbone_args(
        backbone: str | nn.Module,
        rest: dict[str, Any],
        bands: Sequence[str] | None,
        in_channels: int | None,
        pretrained: bool,
        checkpoint_path: str | None,
        platform: str | None,
    ) -> dict[str, Any]:
        """``backbone_*`` keywords from the reference's top-level arguments (``rest`` loses the size keys)."""
        if isinstance(backbone, nn.Module):
            return {}
        variant = CLAY_VARIANTS[backbone.removeprefix("geoft_")]
        for key, attribute in _ENCODER_SIZE.items():
            value = rest.pop(key, getattr(variant, attribute))
            if value != getattr(variant, attribute):
                raise ConfigError(
                    f"Clay1_5ModelFactory: {key}={value!r} does not match {backbone} "
                    f"({attribute}={getattr(variant, attribute)})",
                    hint="pick the clay_mae_* backbone of that size instead of overriding it",
                )
        for key in ("dim_head", "patch_size"):
            rest.pop(key, None)
        args: dict[str, Any] = {"backbone_pretrained": pretrained}
        if checkpoint_path is not None:
            args["backbone_ckpt_path"] = checkpoint_path
        if platform is not None:
            if platform not in PLATFORMS:
                raise ConfigError(f"unknown Clay platform {platform!r}; known: {', '.join(PLATFORMS)}")
            names, waves, gsd = PLATFORMS[platform]
            if bands is None:
                args["backbone_bands"], args["backbone_wavelengths"] = list(names), list(waves)
            args.setdefault("backbone_gsd", gsd)
        if bands:
            args["backbone_bands"] = list(bands)
        chosen = args.get("backbone_bands")
        if in_channels is not None and chosen is not None and in_channels != len(chosen):
            raise ConfigError(f"in_channels={in_channels} but {len(chosen)} bands are configured")
        return args
