"""Raster I/O with rasterio: cheap header reads, pixel reads with nodata masks, clear errors.

Every failure becomes a :class:`~geoft.errors.DataError` that names the file and says what to do.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning as _RioNotGeoreferenced
from rasterio.errors import RasterioIOError

from geoft.datasets.problems import FileDataError


class NotGeoreferencedWarning(UserWarning):
    """Images without CRS/transform load fine, but predictions cannot be shown on a map."""


@dataclass(frozen=True)
class RasterInfo:
    """What the header of a raster says (no pixels read)."""

    path: str
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    crs: str | None
    transform: tuple[float, float, float, float, float, float] | None
    descriptions: tuple[str | None, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None


def _diagnose(path: Path, err: Exception) -> FileDataError:
    """The specific reason a raster could not be opened."""
    if not path.exists():
        return FileDataError(
            "missing_file",
            f"File {path} does not exist.",
            str(path),
            hint="check the data root and the grep patterns.",
        )
    if path.is_dir():
        return FileDataError(
            "is_directory",
            f"{path} is a directory, not a raster file; it matched the file pattern by name.",
            str(path),
            hint="rename it or make img_grep/label_grep more specific.",
        )
    if isinstance(err, PermissionError) or not os.access(path, os.R_OK) or "ermission denied" in str(err):
        return FileDataError(
            "permission_denied",
            f"No permission to read {path}.",
            str(path),
            hint="fix the file permissions (chmod a+r).",
        )
    size = path.stat().st_size
    what = (
        "is empty (0 bytes)"
        if size == 0
        else "is not a readable raster (corrupt, truncated or another format)"
    )
    return FileDataError(
        "corrupt_file",
        f"{path} {what}: {err}",
        str(path),
        hint="re-export or re-download the file, or remove it from the dataset.",
    )


def _gdal_env() -> rasterio.Env:
    # GDAL lists the whole folder on every open to look for sidecar files; with thousands of chips
    # per folder that dominates reading time. Users can turn it back on with the variable.
    if "GDAL_DISABLE_READDIR_ON_OPEN" in os.environ:
        return rasterio.Env()
    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR")


@contextmanager
def _open(path: Path) -> Iterator[rasterio.DatasetReader]:
    with _gdal_env():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", _RioNotGeoreferenced)
                src = rasterio.open(path)
        except (RasterioIOError, PermissionError) as err:
            raise _diagnose(path, err) from err
        with src:
            yield src


def _info(src: rasterio.DatasetReader, path: Path) -> RasterInfo:
    georef = src.crs is not None
    transform = tuple(src.transform)[:6] if georef else None
    return RasterInfo(
        path=str(path),
        width=src.width,
        height=src.height,
        count=src.count,
        dtype=str(src.dtypes[0]),
        nodata=None if src.nodata is None else float(src.nodata),
        crs=src.crs.to_wkt() if georef else None,
        transform=transform,  # type: ignore[arg-type]
        descriptions=tuple(src.descriptions),
    )


def read_header(path: str | Path) -> RasterInfo:
    """Read size, band count, dtype, nodata, CRS and transform without reading pixels."""
    path = Path(path)
    with _open(path) as src:
        return _info(src, path)


def read_tags(path: str | Path) -> dict[str, str]:
    """The dataset-level metadata tags of a raster (``TIFFTAG_DATETIME``...), names upper-cased."""
    path = Path(path)
    with _open(path) as src:
        return {k.upper(): v for k, v in src.tags().items()}


_kept = threading.local()


@contextmanager
def read_each_file_once() -> Iterator[None]:
    """Inside the block (in this thread), :func:`read_raster` reads a file once: asked again with the
    same arguments, it returns the first result. The full data check and the statistics thereby share
    one read of each sample. The arrays returned are shared: do not change them in place."""
    _kept.reads = {}
    try:
        yield
    finally:
        _kept.reads = None


def read_raster(
    path: str | Path,
    indexes: list[int] | Callable[[RasterInfo], list[int] | None] | None = None,
    out_shape: tuple[int, int] | None = None,
    resampling: Resampling = Resampling.bilinear,
) -> tuple[np.ndarray, np.ndarray, RasterInfo]:
    """Read bands (1-based ``indexes``, default all) in one open.

    ``indexes`` may be a function of the header, to choose bands without opening the file twice.

    Returns ``(data [C, H, W], nodata_mask [C, H, W] bool, info)``. The mask is True where the value
    equals the file's nodata value or is NaN. With ``out_shape`` the bands are resampled (as float32).
    """
    reads = getattr(_kept, "reads", None)
    if reads is None:
        return _read_raster(Path(path), indexes, out_shape, resampling)
    key = (
        str(path),
        indexes if callable(indexes) or indexes is None else tuple(indexes),
        None if out_shape is None else tuple(out_shape),
        resampling,
    )
    if key not in reads:
        reads[key] = _read_raster(Path(path), indexes, out_shape, resampling)
    return reads[key]


def _read_raster(
    path: Path,
    indexes: list[int] | Callable[[RasterInfo], list[int] | None] | None,
    out_shape: tuple[int, int] | None,
    resampling: Resampling,
) -> tuple[np.ndarray, np.ndarray, RasterInfo]:
    with _open(path) as src:
        info = _info(src, path)
        if callable(indexes):
            indexes = indexes(info)
        if indexes is not None:
            bad = [i for i in indexes if not 1 <= i <= src.count]
            if bad:
                raise FileDataError(
                    "band_count", f"{path} has {src.count} bands; band numbers {bad} do not exist.", str(path)
                )
        try:
            if out_shape is not None and tuple(out_shape) != (src.height, src.width):
                count = src.count if indexes is None else len(indexes)
                data = src.read(
                    indexes,
                    out_shape=(count, *out_shape),
                    resampling=resampling,
                    out_dtype="float32",
                )
            else:
                data = src.read(indexes)
        except (RasterioIOError, rasterio.errors.RasterioError) as err:
            raise FileDataError(
                "corrupt_file",
                f"Cannot read the pixels of {path}: {err}",
                str(path),
                hint="the file is probably truncated or corrupt; re-export it or remove it from the dataset.",
            ) from err
    mask = np.zeros(data.shape, dtype=bool)
    if info.nodata is not None:
        if np.isnan(info.nodata):
            mask |= np.isnan(data) if data.dtype.kind == "f" else False
        else:
            mask |= data == np.asarray(info.nodata).astype(data.dtype)
    if data.dtype.kind == "f":
        mask |= np.isnan(data)
    return data, mask, info
