"""Helpers for the data tests: write tiny GeoTIFFs in tmp_path."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

WriteTif = Callable[..., Path]


def _origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


def write_tif(
    path: Path,
    data: np.ndarray,
    crs: str | None = "EPSG:32633",
    transform=None,
    nodata: float | None = None,
    pixel: float = 10.0,
    origin: tuple[float, float] = (500000.0, 5000000.0),
) -> Path:
    """Write ``data`` ([C, H, W] or [H, W]) as a GeoTIFF (``crs=None``: not georeferenced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.ndim == 2:
        data = data[None]
    kwargs = {}
    if crs is not None:
        kwargs = {"crs": crs, "transform": transform or _origin(origin[0], origin[1], pixel, pixel)}
    profile = dict(width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=str(data.dtype))
    with warnings.catch_warnings():  # writing a non-georeferenced file on purpose
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", nodata=nodata, **profile, **kwargs) as dst:
            dst.write(data)
    return path


@pytest.fixture
def tif() -> WriteTif:
    return write_tif


@pytest.fixture
def seg_folder(tmp_path: Path) -> Callable[..., Path]:
    """Make ``root/images/<name>_img.tif`` and ``root/labels/<name>_lbl.tif`` for a few chips."""

    def make(
        names: list[str] = ("a", "b", "c", "d"),
        bands: int = 3,
        size: int = 16,
        num_classes: int = 3,
        root: Path | None = None,
        dtype: str = "uint16",
        seed: int = 0,
    ) -> Path:
        root = root or tmp_path / "seg"
        rng = np.random.default_rng(seed)
        for i, name in enumerate(names):
            image = (rng.random((bands, size, size)) * 1000 + 100 * i).astype(dtype)
            label = rng.integers(0, num_classes, (size, size)).astype("uint8")
            write_tif(root / "images" / f"{name}_img.tif", image, origin=(500000.0 + 1000 * i, 5000000.0))
            write_tif(root / "labels" / f"{name}_lbl.tif", label, origin=(500000.0 + 1000 * i, 5000000.0))
        return root

    return make
