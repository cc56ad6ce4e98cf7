"""Backbones: Prithvi-EO ViTs, any timm model (``timm_`` prefix) and torchgeo's pretrained models
(ResNets, ViTs, Satlas Swins, DOFA, CopernicusFM, Panopticon, CROMA, Scale-MAE).

Build them through :data:`geoft.registry.BACKBONE_REGISTRY`. Names resolve lazily here so that
importing this package does not import torch or timm.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Band": "geoft.models.backbones.bands",
    "LoadReport": "geoft.models.backbones.checkpoint",
    "PrithviViT": "geoft.models.backbones.prithvi_vit",
    "build_prithvi": "geoft.models.backbones.prithvi",
    "PRITHVI_VARIANTS": "geoft.models.backbones.prithvi",
    "load_prithvi_checkpoint": "geoft.models.backbones.prithvi_weights",
    "TimmBackbone": "geoft.models.backbones.timm",
    "TorchGeoResNet": "geoft.models.backbones.torchgeo_resnet",
    "TorchGeoViT": "geoft.models.backbones.torchgeo_vit",
    "SatlasSwin": "geoft.models.backbones.torchgeo_swin",
    "DOFAEncoder": "geoft.models.backbones.torchgeo_wavelength",
    "CopernicusFMEncoder": "geoft.models.backbones.torchgeo_wavelength",
    "PanopticonEncoder": "geoft.models.backbones.torchgeo_wavelength",
    "CROMAEncoder": "geoft.models.backbones.torchgeo_croma_scalemae",
    "ScaleMAEEncoder": "geoft.models.backbones.torchgeo_croma_scalemae",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'geoft.models.backbones' has no attribute {name!r}")
