"""Classification (folders, CSV, multi-label) and pixel-wise regression datamodules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geoft.datamodules import (
    GenericNonGeoClassificationDataModule,
    GenericNonGeoPixelwiseRegressionDataModule,
)
from geoft.datasets import validate_dataset
from geoft.errors import ConfigError, DataError


def _chip(tif, path, value):
    return tif(path, np.full((2, 8, 8), value, dtype="uint16"))


def test_classification_from_class_folders(tmp_path, tif):
    for split in ("train", "val"):
        for cls, value in (("forest", 1), ("water", 2), ("urban", 3)):
            for i in range(2):
                _chip(tif, tmp_path / split / cls / f"{cls}{i}.tif", value)
    # val lacks one class folder: indices must still follow the training split
    for f in (tmp_path / "val" / "forest").iterdir():
        f.unlink()
    (tmp_path / "val" / "forest").rmdir()
    dm = GenericNonGeoClassificationDataModule(
        num_classes=3,
        batch_size=6,
        train_data_root=tmp_path / "train",
        val_data_root=tmp_path / "val",
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
    )
    dm.setup("fit")
    assert dm.class_names == ["forest", "urban", "water"]
    batch = next(iter(dm.train_dataloader()))
    for value, label in zip(batch["image"][:, 0, 0, 0].tolist(), batch["label"].tolist()):
        assert {1: 0, 3: 1, 2: 2}[int(value)] == label
    val = next(iter(dm.val_dataloader()))
    for value, label in zip(val["image"][:, 0, 0, 0].tolist(), val["label"].tolist()):
        assert {3: 1, 2: 2}[int(value)] == label


def test_classification_csv_names_and_indices(tmp_path, tif):
    for i in range(4):
        _chip(tif, tmp_path / "imgs" / f"chip{i}.tif", i)
    (tmp_path / "labels.csv").write_text(
        "filename,label\nchip0.tif,water\nchip1.tif,forest\nchip2,water\nchip3.tif,forest\n"
    )
    dm = GenericNonGeoClassificationDataModule(
        num_classes=2,
        batch_size=4,
        train_data_root=tmp_path / "imgs",
        train_labels_file=tmp_path / "labels.csv",
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
    )
    dm.setup("fit")
    ds = dm.train_dataset
    assert ds.class_names == ["forest", "water"]
    assert [int(ds[i]["label"]) for i in range(4)] == [1, 0, 1, 0]
    (tmp_path / "idx.txt").write_text("chip0.tif\t1\nchip1.tif\t0\nchip2.tif\t1\nchip3.tif\t0\n")
    dm = GenericNonGeoClassificationDataModule(
        num_classes=2,
        train_data_root=tmp_path / "imgs",
        train_labels_file=tmp_path / "idx.txt",
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
    )
    dm.setup("fit")
    assert [int(dm.train_dataset[i]["label"]) for i in range(4)] == [1, 0, 1, 0]


def test_multi_label_csv(tmp_path, tif):
    for i in range(3):
        _chip(tif, tmp_path / "imgs" / f"c{i}.tif", i)
    (tmp_path / "ml.csv").write_text("c0.tif,forest;water\nc1.tif,urban\nc2.tif,forest,urban,water\n")
    dm = GenericNonGeoClassificationDataModule(
        num_classes=3,
        multi_label=True,
        batch_size=3,
        train_data_root=tmp_path / "imgs",
        train_labels_file=tmp_path / "ml.csv",
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    by_value = {int(v): lab.tolist() for v, lab in zip(batch["image"][:, 0, 0, 0], batch["label"])}
    assert by_value == {0: [1.0, 0.0, 1.0], 1: [0.0, 1.0, 0.0], 2: [1.0, 1.0, 1.0]}
    assert batch["label"].dtype == torch.float32
    single = GenericNonGeoClassificationDataModule(
        num_classes=3,
        train_data_root=tmp_path / "imgs",
        train_labels_file=tmp_path / "ml.csv",
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
    )
    with pytest.raises(DataError, match="multi_label: true"):
        single.setup("fit")


def test_classification_csv_missing_image_label(tmp_path, tif):
    for i in range(3):
        _chip(tif, tmp_path / "imgs" / f"c{i}.tif", i)
    (tmp_path / "l.csv").write_text("c0.tif,a\nc1.tif,b\n")
    dm = GenericNonGeoClassificationDataModule(
        num_classes=2,
        train_data_root=tmp_path / "imgs",
        train_labels_file=tmp_path / "l.csv",
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
    )
    with pytest.raises(DataError, match=r"c2\.tif is not listed in labels file"):
        dm.setup("fit")
    problems = validate_dataset(dm)
    assert [(p.code, p.path.split("/")[-1]) for p in problems] == [("missing_label", "c2.tif")]
    with pytest.raises(ConfigError, match="multi_label needs a labels_file"):
        GenericNonGeoClassificationDataModule(
            num_classes=2,
            train_data_root=tmp_path / "imgs",
            multi_label=True,
            means=[0.0, 0.0],
            stds=[1.0, 1.0],
        ).setup("fit")


def test_classification_predict_and_stats(tmp_path, tif):
    for cls, value in (("a", 10), ("b", 30)):
        _chip(tif, tmp_path / "train" / cls / "x.tif", value)
    _chip(tif, tmp_path / "pred" / "any" / "where.tif", 5)
    dm = GenericNonGeoClassificationDataModule(
        num_classes=2,
        batch_size=2,
        train_data_root=tmp_path / "train",
        predict_data_root=tmp_path / "pred",
        stats_cache_dir=str(tmp_path / "cache"),
    )
    dm.setup("fit")
    assert dm.means == [20.0, 20.0] and dm.stds == [10.0, 10.0]
    dm.setup("predict")
    batch = dm.on_after_batch_transfer(next(iter(dm.predict_dataloader())), 0)
    assert "label" not in batch and torch.allclose(batch["image"], torch.full((1, 2, 8, 8), -1.5))


def test_regression_targets_and_nodata(tmp_path, tif):
    for i in range(2):
        tif(tmp_path / "img" / f"t{i}.tif", np.full((3, 8, 8), i, dtype="float32"))
        target = np.full((8, 8), 0.5 + i, dtype="float32")
        target[0, 0] = -1
        tif(tmp_path / "tgt" / f"t{i}.tif", target, nodata=-1)
    args = dict(
        batch_size=2,
        train_data_root=tmp_path / "img",
        train_label_data_root=tmp_path / "tgt",
        means=[0.0] * 3,
        stds=[1.0] * 3,
    )
    with pytest.raises(DataError, match="nodata"):
        dm = GenericNonGeoPixelwiseRegressionDataModule(**args)
        dm.setup("fit")
        next(iter(dm.train_dataloader()))
    dm = GenericNonGeoPixelwiseRegressionDataModule(**args, ignore_index=-100, train_transform=["hflip"])
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["mask"].dtype == torch.float32 and batch["mask"].shape == (2, 8, 8)
    assert (batch["mask"] == -100).sum() == 2 and set(batch["mask"].unique().tolist()) == {-100.0, 0.5, 1.5}
