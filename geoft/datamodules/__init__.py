"""Generic datamodules (torchgeo ``NonGeoDataModule`` based) and batch transforms.

Attributes resolve lazily so that ``import geoft.datamodules`` stays light.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "GenericNonGeoSegmentationDataModule": "geoft.datamodules.pixelwise",
    "GenericNonGeoPixelwiseRegressionDataModule": "geoft.datamodules.pixelwise",
    "GenericNonGeoClassificationDataModule": "geoft.datamodules.classification",
    "GenericNonGeoImageDataModule": "geoft.datamodules.images",
    "GenericNonGeoScalarRegressionDataModule": "geoft.datamodules.scalar_regression",
    "GenericObjectDetectionDataModule": "geoft.datamodules.detection",
    "GenericNonGeoObjectDetectionDataModule": "geoft.datamodules.detection",
    "GenericMultiModalDataModule": "geoft.datamodules.multimodal",
    "GenericDataModuleBase": "geoft.datamodules.base",
    "BatchTransform": "geoft.datamodules.transforms",
    "build_augmentations": "geoft.datamodules.transforms",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'geoft.datamodules' has no attribute {name!r}")
