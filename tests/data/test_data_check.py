"""The full data check: each fault reaches `geoft fit` as a user's would, and is refused before any step."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from geoft.cli import main
from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datasets.data_check import check_dataset_files


def _truncate_keeping_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3 * 2])
    with rasterio.open(path) as src:  # the header still opens: only reading the pixels fails
        assert src.count == 6


def _rewrite(path: Path, array: np.ndarray) -> None:
    with rasterio.open(path) as src:
        profile = src.profile
    profile.update(dtype=str(array.dtype), count=array.shape[0] if array.ndim == 3 else 1)
    profile.update(width=array.shape[-1], height=array.shape[-2])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array if array.ndim == 3 else array[None])


def _images(root: Path) -> list[Path]:
    return sorted((root / "data/demo/train/images").glob("*.tif"))


def _labels(root: Path) -> list[Path]:
    return sorted((root / "data/demo/train/labels").glob("*.tif"))


def _break_truncated(root: Path) -> Path:
    _truncate_keeping_header(_images(root)[0])
    return _images(root)[0]


def _break_label_class(root: Path) -> Path:
    _rewrite(_labels(root)[1], np.full((32, 32), 7, dtype="uint8"))
    return _labels(root)[1]


def _break_nan(root: Path) -> Path:
    image = np.ones((6, 32, 32), dtype="float32")
    image[0, 3, 3] = np.nan
    _rewrite(_images(root)[2], image)
    return _images(root)[2]


def _break_all_nodata(root: Path) -> Path:
    path = _images(root)[3]
    with rasterio.open(path) as src:
        profile = src.profile
    profile.update(nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((6, 32, 32), dtype=profile["dtype"]))
    return path


def _break_grid(root: Path) -> Path:
    _rewrite(_labels(root)[0], np.zeros((24, 32), dtype="uint8"))
    return _labels(root)[0]


@pytest.mark.parametrize(
    "fault", [_break_truncated, _break_label_class, _break_nan, _break_all_nodata, _break_grid]
)
def test_geoft_fit_refuses_bad_data_before_the_first_step(
    fault, tmp_path: Path, tiny_demo_workspace, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    root = tiny_demo_workspace(tmp_path, {"max_steps": 2})
    bad = fault(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("GEOFT_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["fit", "-c", "config.yaml"]) == 2
    err = capsys.readouterr().err
    # a grid mismatch is seen from the headers at indexing; the others only by reading every pixel
    header_fault = fault is _break_grid
    assert ("Dataset 'train'" if header_fault else "data check found problems") in err, err
    assert ("[train]" in err or header_fault) and bad.name in err, err
    assert not list(root.rglob("*.ckpt")), "a training step was taken"


def _dm(root: Path) -> GenericNonGeoSegmentationDataModule:
    init = yaml.safe_load((root / "config.yaml").read_text())["data"]["init_args"]
    for key, value in list(init.items()):
        if key.endswith("data_root") and value:
            init[key] = str(root / value)
    init["stats_cache_dir"] = str(root / "cache")
    return GenericNonGeoSegmentationDataModule(**init)


def test_the_cache_skips_known_files_and_rechecks_a_changed_one(tmp_path: Path, tiny_demo_workspace) -> None:
    root = tiny_demo_workspace(tmp_path, {"max_steps": 1})
    dataset = _dm(root).build_dataset("train")
    problems, read = check_dataset_files(dataset, "train", root / "cache")
    assert problems == [] and read == len(dataset.samples) == 4
    assert check_dataset_files(dataset, "train", root / "cache") == ([], 0)
    image = _images(root)[1]
    _truncate_keeping_header(image)
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    problems, read = check_dataset_files(dataset, "train", root / "cache")
    assert read == 1 and [p.path for p in problems if p.severity == "error"] == [str(image)]


def test_data_check_headers_skips_the_pixel_read(tmp_path: Path, tiny_demo_workspace) -> None:
    root = tiny_demo_workspace(tmp_path, {"max_steps": 1})
    _break_truncated(root)
    dm = _dm(root)
    dm.data_check = "headers"
    dm.setup("validate")  # the truncated file is a training file; validation data is fine
    dm.setup("fit")  # and with headers only, the truncated pixels are not read here
    with pytest.raises(Exception, match="data check found problems"):
        full = _dm(root)
        full.setup("fit")


def test_fit_setup_reads_each_file_once_for_check_and_statistics(
    tmp_path: Path, tiny_demo_workspace, monkeypatch
) -> None:
    from geoft.datasets import raster
    from geoft.datasets.statistics import compute_statistics, load_cached_statistics

    root = tiny_demo_workspace(tmp_path, {"max_steps": 1})
    dm = _dm(root)
    dm.means = dm.stds = None  # to be computed from the training data
    reads: dict[str, int] = {}
    read = raster._read_raster

    def counted(path, *args):
        reads[str(path)] = reads.get(str(path), 0) + 1
        return read(path, *args)

    monkeypatch.setattr(raster, "_read_raster", counted)
    dm.setup("fit")
    files = _images(root) + _labels(root) + sorted((root / "data/demo/val").rglob("*.tif"))
    assert reads == {str(f): 1 for f in files}, reads  # checked and measured from one read
    monkeypatch.setattr(raster, "_read_raster", read)
    train = dm.build_dataset("train")
    expected = compute_statistics(train)
    assert dm.means == expected.means and dm.stds == expected.stds
    cached = load_cached_statistics(train, root / "cache")
    assert cached is not None and cached[0].means == expected.means and dm.stats_source == str(cached[1])


def test_a_bad_training_file_is_reported_and_no_statistics_are_cached(
    tmp_path: Path, tiny_demo_workspace
) -> None:
    from geoft.datasets.data_check import check_with_statistics
    from geoft.datasets.statistics import load_cached_statistics

    root = tiny_demo_workspace(tmp_path, {"max_steps": 1})
    bad = _break_truncated(root)
    train = _dm(root).build_dataset("train")
    problems, stats = check_with_statistics(train, "train", root / "cache")
    assert stats is None and [p.path for p in problems if p.severity == "error"] == [str(bad)]
    assert load_cached_statistics(train, root / "cache") is None
