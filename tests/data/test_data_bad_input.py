"""Every kind of bad input gives a specific DataError naming the file, and nothing is overwritten."""

from __future__ import annotations

import os

import numpy as np
import pytest

from geoft.datasets import GenericNonGeoSegmentationDataset, generate_demo_dataset
from geoft.errors import DataError


def _seg(tmp_path, **kw):
    args = dict(label_data_root=tmp_path / "l")
    args.update(kw)
    return GenericNonGeoSegmentationDataset(tmp_path / "i", 3, **args)


def _pair(tif, tmp_path, name="a", image=None, label=None, **kw):
    tif(tmp_path / "i" / f"{name}.tif", np.ones((2, 8, 8), dtype="uint16") if image is None else image, **kw)
    tif(tmp_path / "l" / f"{name}.tif", np.zeros((8, 8), dtype="uint8") if label is None else label)


def test_empty_folder(tmp_path):
    (tmp_path / "i").mkdir()
    with pytest.raises(DataError, match=r"image folder .*/i is empty"):
        _seg(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"image folder .*/i does not exist"):
        _seg(tmp_path)


def test_grep_matches_nothing(tmp_path, tif):
    _pair(tif, tmp_path)
    with pytest.raises(
        DataError,
        match=r"No image files in .* match the pattern '\*_S2\.tif' \(the folder holds e\.g\. a\.tif\)",
    ):
        _seg(tmp_path, image_grep="*_S2.tif")


def test_corrupt_tiff(tmp_path, tif):
    _pair(tif, tmp_path)
    (tmp_path / "i" / "b.tif").write_bytes(b"II*\x00garbage")
    tif(tmp_path / "l" / "b.tif", np.zeros((8, 8), dtype="uint8"))
    with pytest.raises(DataError, match=r"b\.tif is not a readable raster"):
        _seg(tmp_path)


def test_truncated_tiff(tmp_path, tif):
    big = np.random.default_rng(0).integers(0, 60000, (2, 64, 64)).astype("uint16")
    _pair(tif, tmp_path, image=big, label=np.zeros((64, 64), dtype="uint8"))
    path = tmp_path / "i" / "a.tif"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, pixel data cut
    ds = _seg(tmp_path)
    with pytest.raises(
        DataError, match=r"(Cannot read the pixels of .*a\.tif|a\.tif is not a readable raster)"
    ):
        ds[0]


def test_empty_file(tmp_path, tif):
    _pair(tif, tmp_path)
    (tmp_path / "i" / "b.tif").write_bytes(b"")
    tif(tmp_path / "l" / "b.tif", np.zeros((8, 8), dtype="uint8"))
    with pytest.raises(DataError, match=r"b\.tif is empty \(0 bytes\)"):
        _seg(tmp_path)


def test_label_of_other_size(tmp_path, tif):
    _pair(tif, tmp_path, label=np.zeros((8, 9), dtype="uint8"))
    with pytest.raises(DataError, match=r"Label .*a\.tif is 8x9 pixels but its image .*a\.tif is 8x8"):
        _seg(tmp_path)


def test_label_of_other_crs(tmp_path, tif):
    tif(tmp_path / "i" / "a.tif", np.ones((2, 8, 8), dtype="uint16"), crs="EPSG:32633")
    tif(
        tmp_path / "l" / "a.tif",
        np.zeros((8, 8), dtype="uint8"),
        crs="EPSG:4326",
        pixel=0.001,
        origin=(15.0, 45.0),
    )
    with pytest.raises(DataError, match=r"different CRS \(EPSG:4326 vs EPSG:32633\)"):
        _seg(tmp_path)


def test_wrong_band_count(tmp_path, tif):
    _pair(tif, tmp_path)
    with pytest.raises(DataError, match=r"a\.tif has 2 bands but dataset_bands lists 3 \(B, G, R\)"):
        _seg(tmp_path, dataset_bands=["B", "G", "R"])


def test_labels_out_of_range(tmp_path, tif):
    label = np.zeros((8, 8), dtype="int16")
    label[0, :3] = [3, 7, -1]
    _pair(tif, tmp_path, label=label)
    with pytest.raises(DataError, match=r"values 3, 7 outside the classes 0\.\.2 \(ignore_index=-1\)"):
        _seg(tmp_path, ignore_index=-1)[0]
    with pytest.raises(DataError, match=r"values -1, 3, 7 outside .*no ignore_index set"):
        _seg(tmp_path)[0]


def test_all_nodata_chip(tmp_path, tif):
    _pair(tif, tmp_path, image=np.zeros((2, 8, 8), dtype="uint16"), nodata=0)
    with pytest.raises(DataError, match=r"a\.tif: every pixel is nodata"):
        _seg(tmp_path, no_data_replace=0)[0]


def test_nan_without_no_data_replace(tmp_path, tif):
    image = np.ones((2, 8, 8), dtype="float32")
    image[1, 2, 3] = np.nan
    _pair(tif, tmp_path, image=image)
    with pytest.raises(
        DataError, match=r"(?s)a\.tif: 1 of 128 values are nodata or NaN.*set no_data_replace"
    ):
        _seg(tmp_path)[0]


def test_directory_named_like_a_tiff(tmp_path, tif):
    # tests run as root, who can read any file, so an unreadable path is simulated by a directory
    _pair(tif, tmp_path)
    (tmp_path / "i" / "b.tif").mkdir()
    tif(tmp_path / "l" / "b.tif", np.zeros((8, 8), dtype="uint8"))
    with pytest.raises(DataError, match=r"b\.tif is a directory, not a raster file"):
        _seg(tmp_path)


def test_unreadable_permissions(tmp_path, tif):
    _pair(tif, tmp_path)
    path = tmp_path / "i" / "a.tif"
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip(
                "running as root: chmod 000 does not stop reading (see test_directory_named_like_a_tiff)"
            )
        with pytest.raises(DataError, match="No permission to read"):
            _seg(tmp_path)
    finally:
        os.chmod(path, 0o644)


def test_demo_data_never_overwrites(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(DataError, match="not empty"):
        generate_demo_dataset(tmp_path, n_train=1, n_val=0, n_test=0, size=16)
    with pytest.raises(DataError, match="no dataset.json"):
        generate_demo_dataset(tmp_path, n_train=1, n_val=0, n_test=0, size=16, overwrite=True)
    assert (tmp_path / "mine.txt").read_text() == "precious"
