"""Per-band statistics, class counts, and the statistics cache (next to the data or in a cache dir)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datasets import GenericNonGeoSegmentationDataset, cached_statistics, compute_statistics
from geoft.datasets.statistics import datamodule_statistics
from geoft.errors import ConfigError


def _data(tmp_path, tif):
    rng = np.random.default_rng(1)
    images = []
    for i in range(3):
        image = rng.normal(100 * (i + 1), 10, (2, 8, 8)).astype("float32")
        image[:, 0, 0] = -9999  # nodata excluded from the statistics
        images.append(image)
        tif(tmp_path / "img" / f"s{i}.tif", image, nodata=-9999)
        tif(tmp_path / "lab" / f"s{i}.tif", np.array([[i % 2] * 8] * 7 + [[255] * 8], dtype="uint8"))
    return images


def test_statistics_match_numpy_and_skip_nodata(tmp_path, tif):
    images = _data(tmp_path, tif)
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "img", 2, label_data_root=tmp_path / "lab", no_data_replace=0, ignore_index=255
    )
    stats = compute_statistics(ds)
    valid = np.concatenate([im.reshape(2, -1)[:, 1:] for im in images], axis=1).astype(np.float64)
    assert np.allclose(stats.means, valid.mean(1)) and np.allclose(stats.stds, valid.std(1))
    assert stats.valid_pixels == [189, 189]
    assert stats.class_counts == {0: 2 * 56, 1: 56} and stats.ignored_pixels == 24


def test_means_stds_computed_once_and_cached_next_to_data(tmp_path, tif, monkeypatch):
    _data(tmp_path, tif)
    monkeypatch.setenv("GEOFT_CACHE_DIR", str(tmp_path / "home_cache"))
    args = dict(
        num_classes=2,
        train_data_root=tmp_path / "img",
        train_label_data_root=tmp_path / "lab",
        no_data_replace=0,
        ignore_index=255,
        dataset_bands=["A", "B"],
    )
    dm = GenericNonGeoSegmentationDataModule(**args)
    dm.setup("fit")
    cache_files = list((tmp_path / "img" / ".geoft_cache").glob("statistics-*.json"))
    assert len(cache_files) == 1 and dm.stats_source == str(cache_files[0])
    saved = json.loads(cache_files[0].read_text())
    assert saved["means"] == dm.means
    # a second datamodule reads the cache instead of the pixels: prove it by editing the cache
    saved["means"] = [1.0, 2.0]
    cache_files[0].write_text(json.dumps(saved))
    dm2 = GenericNonGeoSegmentationDataModule(**args)
    dm2.setup("fit")
    assert dm2.means == [1.0, 2.0]
    # another band selection is another key
    dm3 = GenericNonGeoSegmentationDataModule(**args, output_bands=["B"])
    dm3.setup("fit")
    assert len(dm3.means) == 1 and len(list((tmp_path / "img" / ".geoft_cache").glob("*.json"))) == 2
    # the checkpoint round trip keeps the statistics
    dm4 = GenericNonGeoSegmentationDataModule(
        num_classes=2, predict_data_root=tmp_path / "img", no_data_replace=0
    )
    dm4.load_state_dict(dm.state_dict())
    assert dm4.statistics() == (dm.means, dm.stds)


def test_cache_goes_to_cache_dir_when_data_folder_is_read_only(tmp_path, tif):
    _data(tmp_path, tif)
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "img", 2, label_data_root=tmp_path / "lab", no_data_replace=0, ignore_index=255
    )
    os.chmod(tmp_path / "img", 0o555)  # no write bit: respected even when running as root
    try:
        stats, path = cached_statistics(ds, cache_dir=tmp_path / "cache")
    finally:
        os.chmod(tmp_path / "img", 0o755)
    assert path.parent == tmp_path / "cache" and not (tmp_path / "img" / ".geoft_cache").exists()
    again, path2 = cached_statistics(ds, cache_dir=tmp_path / "cache")
    assert path2 == path and again.means == stats.means


def test_cache_key_changes_when_files_change(tmp_path, tif):
    _data(tmp_path, tif)
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "img", 2, label_data_root=tmp_path / "lab", no_data_replace=0, ignore_index=255
    )
    _, first = cached_statistics(ds)
    tif(tmp_path / "img" / "s0.tif", np.ones((2, 9, 8), dtype="float32"))
    tif(tmp_path / "lab" / "s0.tif", np.zeros((9, 8), dtype="uint8"))
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "img", 2, label_data_root=tmp_path / "lab", no_data_replace=0, ignore_index=255
    )
    _, second = cached_statistics(ds)
    assert first != second


def test_datamodule_statistics_from_config(tmp_path, tif):
    _data(tmp_path, tif)
    config = {
        "data": {
            "class_path": "geoft.datamodules.GenericNonGeoSegmentationDataModule",
            "init_args": {
                "num_classes": 2,
                "train_data_root": str(tmp_path / "img"),
                "train_label_data_root": str(tmp_path / "lab"),
                "no_data_replace": 0,
                "ignore_index": 255,
            },
        }
    }
    stats = datamodule_statistics(config, use_cache=False)
    assert stats.num_samples == 3 and stats.class_counts == {0: 112, 1: 56}
    with pytest.raises(ConfigError, match="no train_data_root"):
        GenericNonGeoSegmentationDataModule(num_classes=2, predict_data_root=tmp_path / "img").statistics()
