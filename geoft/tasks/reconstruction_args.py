"""ReconstructionTask's model arguments: geoft's form, and the reference's ``FullModelFactory`` form.

geoft's form names the encoder (``backbone: prithvi_eo_v2_300``, ``backbone_<arg>``) and the MAE's
decoder sizes. The reference's form is ``model_factory: FullModelFactory`` with
``model_args: {model: prithvi_eo_v2_300_mae, pretrained: true, ...}``; it means the published MAE, so
its decoder sizes default to the published decoder's and its other arguments go to the encoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoft.errors import ConfigError

MAE_ARGS = ("mask_ratio", "decoder_embed_dim", "decoder_depth", "decoder_num_heads")
# The decoder of every published Prithvi-EO MAE (1.0 and 2.0).
PUBLISHED_DECODER = {"decoder_embed_dim": 512, "decoder_depth": 8, "decoder_num_heads": 16}
REFERENCE_FACTORY = "FullModelFactory"
_MAE_SUFFIX = "_mae"


def geoft_model_args(model_factory: str | None, model_args: Mapping[str, Any]) -> dict[str, Any]:
    """``model_args`` in geoft's form, translating the reference's ``FullModelFactory`` form."""
    args = dict(model_args or {})
    if model_factory is None:
        return args
    factory = model_factory.rsplit(".", 1)[-1]
    if factory != REFERENCE_FACTORY:
        raise ConfigError(
            f"ReconstructionTask builds masked autoencoders from model_args; model_factory {model_factory!r} "
            "is not supported",
            hint=f"leave model_factory out (geoft's form: backbone, backbone_<arg>, {', '.join(MAE_ARGS)}), "
            f"or use the reference's {REFERENCE_FACTORY} with model: <prithvi name>{_MAE_SUFFIX}",
        )
    model = args.pop("model", None)
    if not isinstance(model, str) or not model.endswith(_MAE_SUFFIX) or not model.startswith("prithvi"):
        raise ConfigError(
            f"ReconstructionTask with {REFERENCE_FACTORY} needs model_args.model: a Prithvi MAE such as "
            f"prithvi_eo_v2_300{_MAE_SUFFIX}, got {model!r}"
        )
    mae = {**PUBLISHED_DECODER, **{k: args.pop(k) for k in MAE_ARGS if k in args}}
    encoder = {f"backbone_{k.removeprefix('backbone_')}": v for k, v in args.items()}
    return {"backbone": model[: -len(_MAE_SUFFIX)], **encoder, **mae}


def check_unsupported(tiled_inference_parameters: Any, modalities: Any) -> None:
    """Refuse the reference's arguments that geoft's reconstruction does not implement, by name."""
    if tiled_inference_parameters:
        raise ConfigError(
            "ReconstructionTask predicts whole chips; tiled_inference_parameters is not supported",
            hint="remove tiled_inference_parameters, or cut large images into chips",
        )
    if modalities:
        raise ConfigError(
            f"ReconstructionTask reconstructs one stack of bands; modalities {list(modalities)} are not supported",
            hint="remove modalities, and give the datamodule concat_bands: true to reconstruct several "
            "modalities as one stack",
        )


__all__ = ["MAE_ARGS", "PUBLISHED_DECODER", "check_unsupported", "geoft_model_args"]
