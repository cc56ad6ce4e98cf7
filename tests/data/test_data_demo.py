"""The synthetic demo dataset: georeferenced, six HLS bands, honest about being synthetic, learnable."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import rasterio
import torch
from torch import nn
from torchmetrics.classification import MulticlassJaccardIndex

from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datasets import generate_demo_dataset, load_demo_info, validate_dataset
from geoft.datasets.demo import DEMO_BANDS, DEMO_CLASSES


def test_demo_dataset_layout_and_metadata(tmp_path):
    start = time.perf_counter()
    info = generate_demo_dataset(tmp_path / "demo", n_train=8, n_val=4, n_test=2, size=32, seed=3)
    assert time.perf_counter() - start < 5
    assert info.counts == {"train": 8, "val": 4, "test": 2}
    assert info.bands == DEMO_BANDS == ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
    assert info.class_names == DEMO_CLASSES and len(info.class_colors) == 5
    meta = json.loads((tmp_path / "demo" / "dataset.json").read_text())
    assert meta["synthetic"] is True and meta["class_names"] == DEMO_CLASSES
    assert "SYNTHETIC" in (tmp_path / "demo" / "README.md").read_text()
    assert load_demo_info(tmp_path / "demo").datamodule_init_args() == info.datamodule_init_args()
    image = next((tmp_path / "demo" / "train" / "images").glob("*.tif"))
    with rasterio.open(image) as src:
        assert src.crs.to_epsg() == 32633 and src.res == (30.0, 30.0) and src.count == 6
        assert src.dtypes[0] == "int16"
        data = src.read()
    assert 0 <= data.min() and data.max() <= 10000
    # spatially coherent: neighbouring pixels are strongly correlated
    nir = data[3].astype(float)
    assert np.corrcoef(nir[:, :-1].ravel(), nir[:, 1:].ravel())[0, 1] > 0.5
    # chips do not overlap on the map
    origins = set()
    for split in ("train", "val", "test"):
        for f in (tmp_path / "demo" / split / "images").glob("*.tif"):
            with rasterio.open(f) as src:
                origins.add((src.transform.c, src.transform.f))
    assert len(origins) == 14
    assert (
        validate_dataset(
            {"class_path": "GenericNonGeoSegmentationDataModule", "init_args": info.datamodule_init_args()}
        )
        == []
    )


def test_demo_is_same_for_same_seed(tmp_path):
    a = generate_demo_dataset(tmp_path / "a", n_train=2, n_val=1, n_test=1, size=16, seed=7)
    b = generate_demo_dataset(tmp_path / "b", n_train=2, n_val=1, n_test=1, size=16, seed=7)
    assert a.means == b.means and a.class_pixel_counts == b.class_pixel_counts


@pytest.mark.slow
def test_tiny_model_learns_demo_data_quickly(tmp_path):
    torch.manual_seed(0)
    info = generate_demo_dataset(tmp_path / "demo", n_train=32, n_val=8, n_test=0, size=64, seed=0)
    args = info.datamodule_init_args()
    dm = GenericNonGeoSegmentationDataModule(batch_size=8, train_transform=["hflip", "vflip"], **args)
    dm.setup("fit")
    model = nn.Sequential(nn.Conv2d(6, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 5, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    start = time.perf_counter()
    train = dm.batch_transform("train")
    for _ in range(4):
        for batch in dm.train_dataloader():
            batch = train(batch)
            loss = nn.functional.cross_entropy(model(batch["image"]), batch["mask"])
            opt.zero_grad()
            loss.backward()
            opt.step()
    metric = MulticlassJaccardIndex(5, average="macro")
    with torch.no_grad():
        for batch in dm.val_dataloader():
            batch = dm.batch_transform("val")(batch)
            metric.update(model(batch["image"]).argmax(1), batch["mask"])
    miou = float(metric.compute())
    assert time.perf_counter() - start < 60
    assert miou > 0.5, f"mIoU {miou:.2f} (chance is about 0.2)"
