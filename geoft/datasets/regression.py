"""Generic pixel-wise regression dataset: images + float target rasters, paired by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geoft.datasets.pixelwise import GenericPixelwiseDataset


@dataclass(eq=False, repr=False)
class GenericNonGeoPixelwiseRegressionDataset(GenericPixelwiseDataset):
    """Images and float targets (``mask`` float32 ``[H, W]``).

    Target nodata/NaN pixels become ``no_label_replace`` or, by default, ``ignore_index``; with neither
    set they are an error. All arguments: see :class:`~geoft.datasets.pixelwise.GenericPixelwiseDataset`.
    """

    target_name = "mask"

    def convert_target(self, data: np.ndarray, nodata: np.ndarray, path: Path) -> np.ndarray:
        return self._fill_nodata_target(data, nodata, path).astype(np.float32)
