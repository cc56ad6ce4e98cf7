"""Models: the :class:`Model` contract, backbones, necks, decoders, heads and factories.

Attributes resolve lazily so that ``import geoft.models`` does not import torch models it won't use.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Model": "geoft.models.model",
    "ModelOutput": "geoft.models.model",
    "ModelFactory": "geoft.models.model",
    "AuxiliaryHead": "geoft.models.model",
    "PixelWiseModel": "geoft.models.pixel_wise_model",
    "ScalarOutputModel": "geoft.models.scalar_output_model",
    "EncoderDecoderFactory": "geoft.models.factories.encoder_decoder",
    "SMPModelFactory": "geoft.models.factories.smp",
    "TimmModelFactory": "geoft.models.factories.timm",
    "FullModelFactory": "geoft.models.factories.full",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'geoft.models' has no attribute {name!r}")
