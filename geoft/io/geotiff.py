"""Write predictions as georeferenced GeoTIFFs: class maps with colour tables, float rasters.

Class maps are ``uint8`` (``uint16`` beyond 255 classes) with an embedded colour table, the class
names in the band description and tags, and a nodata value one past the last class. Regression
maps and probabilities are ``float32`` with ``NaN`` as nodata. Files are tiled and compressed and
written to a temporary name first, then renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import errno
import json
import os
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from geoft.errors import ConfigError
from geoft.storage import StorageError, describe, free_bytes, storage_error, temporary_path

Kind = Literal["classes", "float"]

# A qualitative palette (colour-blind friendly first, then distinct extras); cycled past its end.
_PALETTE = [
    (0, 0, 0),
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (128, 128, 128),
    (255, 255, 255),
    (166, 86, 40),
    (152, 78, 163),
    (77, 175, 74),
    (228, 26, 28),
    (55, 126, 184),
    (255, 127, 0),
]


def default_colors(num_classes: int) -> list[tuple[int, int, int]]:
    """A distinct RGB colour per class."""
    return [_PALETTE[i % len(_PALETTE)] for i in range(num_classes)]


def parse_color(color: str | Sequence[int]) -> tuple[int, int, int]:
    """``"#rrggbb"`` or ``(r, g, b)`` -> ``(r, g, b)``."""
    if isinstance(color, str):
        text = color.lstrip("#")
        if len(text) != 6:
            raise ConfigError(f"colour {color!r} is not '#rrggbb'")
        try:
            return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
        except ValueError as err:
            raise ConfigError(f"colour {color!r} is not '#rrggbb'") from err
    values = tuple(int(c) for c in color)
    if len(values) < 3 or not all(0 <= c <= 255 for c in values):
        raise ConfigError(f"colour {color!r} must be three integers in 0..255")
    return values[0], values[1], values[2]


def class_dtype(num_classes: int) -> str:
    """uint8 up to 255 classes (255 is kept for nodata), uint16 beyond."""
    return "uint8" if num_classes < 255 else "uint16"


def class_nodata(num_classes: int) -> int:
    return 255 if num_classes < 255 else 65535


def output_profile(
    *,
    height: int,
    width: int,
    count: int,
    kind: Kind,
    num_classes: int | None,
    crs: CRS | str | None,
    transform: Affine | Sequence[float] | None,
) -> dict[str, Any]:
    """A tiled, deflate-compressed GTiff profile for a prediction raster."""
    if kind == "classes":
        if num_classes is None:
            raise ValueError("num_classes is required for class maps")
        dtype, nodata = class_dtype(num_classes), class_nodata(num_classes)
    else:
        dtype, nodata = "float32", float("nan")
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    # GDAL needs tile sizes that are multiples of 16; tiny rasters stay striped.
    if height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if crs is not None:
        profile["crs"] = CRS.from_user_input(crs)
    if transform is not None:
        profile["transform"] = transform if isinstance(transform, Affine) else Affine(*list(transform)[:6])
    return profile


def describe_classes(
    dst: rasterio.io.DatasetWriter,
    class_names: Sequence[str] | None,
    class_colors: Sequence[str | Sequence[int]] | None,
    num_classes: int,
) -> None:
    """Embed the colour table, band description and class-name tags in an open class-map dataset."""
    names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ConfigError(f"{len(names)} class names given for {num_classes} classes: {names}")
    colors = (
        [parse_color(c) for c in class_colors] if class_colors is not None else default_colors(num_classes)
    )
    if len(colors) < num_classes:
        raise ConfigError(f"{len(colors)} class colours given for {num_classes} classes")
    if dst.dtypes[0] == "uint8":
        dst.write_colormap(1, {i: (*colors[i], 255) for i in range(num_classes)})
    dst.set_band_description(1, "class")
    dst.update_tags(1, class_names=json.dumps(names), **{f"CLASS_{i}": n for i, n in enumerate(names)})


def float_band_names(dst: rasterio.io.DatasetWriter, names: Sequence[str] | None) -> None:
    if names is None:
        return
    for i, name in enumerate(names, start=1):
        dst.set_band_description(i, name)


_NEARLY_FULL = 16 * 2**20  # bytes free below which a failed raster write is put down to a full disk


def _likely_cause(path: Path, partial: Path | None) -> OSError | None:
    """A full disk or a file-size limit that would explain a failed write of ``partial``, if any."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    try:
        size = partial.stat().st_size if partial is not None else 0
    except OSError:
        size = 0
    if limit != resource.RLIM_INFINITY and size >= limit - 2**16:
        return OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    free = free_bytes(path.parent)
    if free is not None and free < _NEARLY_FULL:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return None


def write_failure(err: BaseException, path: Path, partial: Path | None = None) -> StorageError | None:
    """``err``, raised while writing the raster ``path`` (through the temporary file ``partial``),
    as a :class:`~geoft.storage.StorageError` if storage caused it, else ``None``.

    GDAL prints the system's reason ("No space left on device") but raises only "Write failed", so
    the cause is checked here: a temporary file at the file-size limit, or a disk (nearly) full.
    Call this before removing ``partial``.
    """
    found = storage_error(err, path, "the prediction")
    if found is not None:
        return found
    if not type(err).__module__.startswith("rasterio"):  # RasterioError and GDAL's CPLE_* errors
        return None
    cause = _likely_cause(path, partial)
    return None if cause is None else storage_error(cause, path, "the prediction")


def check_complete(partial: Path, path: Path) -> None:
    """Raise :class:`~geoft.storage.StorageError` if the closed raster ``partial`` (to become ``path``)
    was cut short by a full disk or a file-size limit.

    GDAL writes the last blocks when a dataset is closed and only prints an error if that fails, so
    where the disk is (nearly) full or the file at the size limit, every block is read back once.
    """
    cause = _likely_cause(path, partial)
    if cause is None:
        return
    try:
        with rasterio.open(partial) as ds:
            for _, window in ds.block_windows(1):
                ds.read(window=window)
    except Exception as err:
        raise describe(cause, path, "the prediction") from err


def write_array(
    path: str | Path,
    array: np.ndarray,
    *,
    kind: Kind,
    crs: CRS | str | None,
    transform: Affine | Sequence[float] | None,
    nodata_mask: np.ndarray | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    class_colors: Sequence[str | Sequence[int]] | None = None,
    band_names: Sequence[str] | None = None,
) -> Path:
    """Write ``array`` (``[H, W]`` or ``[bands, H, W]``) as a GeoTIFF, atomically.

    ``nodata_mask`` (``[H, W]`` bool, True = no data) sets those pixels to the nodata value.
    """
    path = Path(path)
    data = array[None] if array.ndim == 2 else array
    if data.ndim != 3:
        raise ValueError(f"expected [H, W] or [bands, H, W], got {array.shape}")
    profile = output_profile(
        height=data.shape[1],
        width=data.shape[2],
        count=data.shape[0],
        kind=kind,
        num_classes=num_classes,
        crs=crs,
        transform=transform,
    )
    data = data.astype(profile["dtype"], copy=True)
    if nodata_mask is not None:
        data[:, nodata_mask] = profile["nodata"]
    tmp = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            if kind == "classes":
                describe_classes(dst, class_names, class_colors, int(num_classes or 0))
            else:
                float_band_names(dst, band_names)
        check_complete(tmp, path)
        os.replace(tmp, path)
    except Exception as err:
        found = write_failure(err, path, tmp)
        if found is None:
            raise
        raise found from err
    finally:
        tmp.unlink(missing_ok=True)
    return path
