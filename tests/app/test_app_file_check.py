"""The Data page's "Check every file": every file read in full, one line per problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from geoft.app.data_summary import summarize
from geoft.app.file_check import check_every_file
from geoft.datasets.demo import generate_demo_dataset


def _demo(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("GEOFT_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "demo"
    generate_demo_dataset(root, n_train=4, n_val=2, n_test=2, size=32, seed=1)
    return root


def test_a_clean_folder_is_all_files_ok_with_its_training_statistics(tmp_path: Path, monkeypatch) -> None:
    from geoft.datasets import GenericNonGeoSegmentationDataset, compute_statistics

    root = _demo(tmp_path, monkeypatch)
    result = check_every_file(summarize(root), num_classes=5)
    assert result.ok and result.lines == [] and result.headline() == "all 16 files OK"  # 8 images, 8 labels
    train = GenericNonGeoSegmentationDataset(
        root / "train/images", label_data_root=root / "train/labels", num_classes=5, name="train"
    )
    expected = compute_statistics(train)
    assert result.statistics is not None
    assert np.allclose(result.statistics["means"], expected.means, rtol=1e-6)
    assert np.allclose(result.statistics["stds"], expected.stds, rtol=1e-6)


def test_each_bad_file_is_one_line_with_split_file_and_problem(tmp_path: Path, monkeypatch) -> None:
    root = _demo(tmp_path, monkeypatch)
    image = sorted((root / "train/images").glob("*.tif"))[0]
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 3 * 2])  # the header still opens, the pixels do not
    label = sorted((root / "val/labels").glob("*.tif"))[1]
    with rasterio.open(label, "r+") as dst:
        dst.write(np.full((1, 32, 32), 7, dtype=dst.dtypes[0]))
    result = check_every_file(summarize(root), num_classes=5)
    assert not result.ok and result.statistics is None
    found = {(line.split, line.file) for line in result.errors}
    assert found == {("train", "train/images/" + image.name), ("val", "val/labels/" + label.name)}, (
        result.lines
    )
    assert result.headline() == "16 files read: 2 problems"
    assert any("7" in line.problem for line in result.errors if line.split == "val")


def test_a_folder_it_cannot_train_on_is_a_line_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    root = _demo(tmp_path, monkeypatch)
    summary = summarize(root)
    summary.splits = [s for s in summary.splits if s.name != "train"]
    result = check_every_file(summary, num_classes=5)
    assert not result.ok and "no training split" in result.errors[0].problem
