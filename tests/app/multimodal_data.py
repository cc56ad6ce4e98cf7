"""Tiny GeoTIFF datasets with two modalities at different resolutions, and with dated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

DATES = ("20200105", "20200301", "20200510")


def _write(
    path: Path, count: int, size: int, pixel: float, i: int, dtype: str = "float32", **tags: str
) -> None:
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=count,
        dtype=dtype,
        crs="EPSG:32633",
        transform=from_origin(400000 + i * 1000, 5000000, pixel, pixel),
    )
    if dtype == "uint8":
        data = (rng.uniform(0, 1, (count, size, size)) > 0.5).astype(np.uint8)
    else:
        data = rng.uniform(0, 1, (count, size, size)).astype(dtype)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)


def make_two_sensors(root: Path, flat: bool, n: int = 4, drop_s1: int | None = None, size: int = 32) -> Path:
    """S2 (6 bands, 10 m, ``size`` px) and S1 (2 bands, 20 m, half the pixels) beside labels (10 m):
    one folder per modality (``S2Hand/``, ``S1Hand/``, ``LabelHand/``) or all in one folder."""
    for i in range(n):
        name = f"chip_{i}"
        where = {k: root if flat else root / k for k in ("S2Hand", "S1Hand", "LabelHand")}
        _write(where["S2Hand"] / f"{name}_S2Hand.tif", 6, size, 10.0, i)
        if i != drop_s1:
            _write(where["S1Hand"] / f"{name}_S1Hand.tif", 2, size // 2, 20.0, i)
        _write(where["LabelHand"] / f"{name}_LabelHand.tif", 1, size, 10.0, i, dtype="uint8")
    return root


def make_dated(
    root: Path, n: int = 3, dates: tuple[str, ...] = DATES, short: int | None = None, size: int = 32
) -> Path:
    """One folder: ``field_<i>_S2_<date>.tif`` (6 bands), ``field_<i>_S1_<date>.tif`` (2 bands) and
    ``field_<i>_mask.tif``; sample ``short`` lacks the last date of both sensors."""
    for i in range(n):
        kept = dates[:-1] if i == short else dates
        for date in kept:
            _write(root / f"field_{i}_S2_{date}.tif", 6, size, 10.0, i)
            _write(root / f"field_{i}_S1_{date}.tif", 2, size, 10.0, i)
        _write(root / f"field_{i}_mask.tif", 1, size, 10.0, i, dtype="uint8")
    return root
