"""Fuzz the GeoTIFF reader: any file ends in pixels or a DataError with a message, never a crash."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.errors import NotGeoreferencedWarning

from geoft.datasets.raster import read_header, read_raster
from geoft.datasets.reader import ImageReader
from geoft.errors import DataError, GeoftError

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DTYPES = ["uint8", "int16", "uint16", "int32", "float32", "float64"]


def _write(path: Path, bands: int, size: int, dtype: str, nodata: float | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = (rng.random((bands, size, size)) * 100).astype(dtype)
    profile = dict(driver="GTiff", width=size, height=size, count=bands, dtype=dtype, nodata=nodata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)


def _read_all_ways(path: Path, reader: ImageReader) -> None:
    """Every public entry point either works or raises a GeoftError that has a message."""
    for call in (lambda: read_header(path), lambda: read_raster(path), lambda: reader.read(path)):
        try:
            call()
        except GeoftError as err:
            assert str(err).strip(), "a GeoftError without a message"


@pytest.mark.timeout(60)
@FUZZ
@given(
    bands=st.integers(1, 5),
    size=st.integers(1, 12),
    dtype=st.sampled_from(DTYPES),
    nodata=st.sampled_from([None, 0.0]),
    cut=st.one_of(st.none(), st.floats(0.0, 0.99)),
    flips=st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(0, 255)), max_size=8),
    expect_bands=st.one_of(st.none(), st.integers(1, 5)),
)
def test_random_and_damaged_geotiffs(bands, size, dtype, nodata, cut, flips, expect_bands):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chip.tif"
        _write(path, bands, size, dtype, nodata, seed=bands * 100 + size)
        raw = bytearray(path.read_bytes())
        for where, value in flips:
            raw[int(where * len(raw))] = value
        if cut is not None:
            raw = raw[: int(cut * len(raw))]
        path.write_bytes(bytes(raw))
        names = None if expect_bands is None else [f"B{i}" for i in range(expect_bands)]
        reader = ImageReader(dataset_bands=names, no_data_replace=0.0)
        _read_all_ways(path, reader)


@pytest.mark.timeout(60)
@FUZZ
@given(payload=st.binary(max_size=600), prefix=st.sampled_from([b"", b"II*\x00", b"MM\x00*", b"II+\x00"]))
def test_random_bytes_named_tif(payload, prefix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.tif"
        path.write_bytes(prefix + payload)
        _read_all_ways(path, ImageReader())


@pytest.mark.timeout(60)
def test_truncated_file_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.tif"
    _write(path, bands=3, size=32, dtype="uint16", nodata=None, seed=1)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="cut.tif"):
        ImageReader().read(path)


@pytest.mark.timeout(60)
def test_band_count_mismatch_is_a_data_error(tmp_path):
    path = tmp_path / "two.tif"
    _write(path, bands=2, size=8, dtype="float32", nodata=None, seed=2)
    with pytest.raises(DataError, match="2 bands"):
        ImageReader(dataset_bands=["a", "b", "c"]).read(path)
