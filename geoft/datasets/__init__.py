"""Raster I/O, generic GeoTIFF datasets, statistics, the demo data generator and data validation.

Attributes resolve lazily so that ``import geoft.datasets`` does not import rasterio or torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "RasterInfo": "geoft.datasets.raster",
    "read_header": "geoft.datasets.raster",
    "read_raster": "geoft.datasets.raster",
    "NotGeoreferencedWarning": "geoft.datasets.raster",
    "ImageReader": "geoft.datasets.reader",
    "GenericPixelwiseDataset": "geoft.datasets.pixelwise",
    "GenericNonGeoSegmentationDataset": "geoft.datasets.segmentation",
    "GenericNonGeoPixelwiseRegressionDataset": "geoft.datasets.regression",
    "GenericNonGeoClassificationDataset": "geoft.datasets.classification",
    "GenericNonGeoScalarRegressionDataset": "geoft.datasets.scalar_regression",
    "GenericObjectDetectionDataset": "geoft.datasets.detection",
    "collate_samples": "geoft.datasets.samples",
    "DatasetStatistics": "geoft.datasets.statistics",
    "compute_statistics": "geoft.datasets.statistics",
    "cached_statistics": "geoft.datasets.statistics",
    "datamodule_statistics": "geoft.datasets.statistics",
    "DemoDatasetInfo": "geoft.datasets.demo",
    "generate_demo_dataset": "geoft.datasets.demo",
    "load_demo_info": "geoft.datasets.demo",
    "DataProblem": "geoft.datasets.problems",
    "validate_dataset": "geoft.datasets.validation",
    "format_problems": "geoft.datasets.validation",
    "datamodule_from_config": "geoft.datasets.validation",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'geoft.datasets' has no attribute {name!r}")
