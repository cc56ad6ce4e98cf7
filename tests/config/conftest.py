"""Tiny generated datasets in the layouts the reference's example configs read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 1 if array.ndim == 2 else array.shape[0]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[-1],
        height=array.shape[-2],
        count=count,
        dtype=array.dtype,
        crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 30, 30),
    ) as dst:
        dst.write(array if array.ndim == 3 else array[None])


def write_flat_split_dataset(
    root: Path, bands: int = 6, size: int = 32, n: int = 6, regression: bool = False
) -> Path:
    """One folder of ``<id>_merged.tif`` images and ``<id>.mask.tif`` labels, with split files
    (the layout of the reference's burn-scars and Sen1Floods11 examples)."""
    rng = np.random.default_rng(0)
    names = [f"chip{i:02d}" for i in range(n)]
    for name in names:
        image = rng.random((bands, size, size), dtype=np.float32)
        if regression:
            label = image[0] * 10
        else:
            label = (image[0] > 0.5).astype(np.int16)
            label[:2, :2] = -1
        _write(root / "data" / f"{name}_merged.tif", image)
        _write(root / "data" / f"{name}.mask.tif", label)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    (root / "splits" / "train.txt").write_text("\n".join(names[:4]) + "\n")
    (root / "splits" / "val.txt").write_text("\n".join(names[4:]) + "\n")
    (root / "splits" / "test.txt").write_text("\n".join(names[4:]) + "\n")
    return root


@pytest.fixture(scope="module")
def flat_split_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_flat_split_dataset(tmp_path_factory.mktemp("flat"))
