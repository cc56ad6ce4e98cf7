"""Real Earth-observation samples (../shared/data/real, read-only; nothing is written there)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
import torch

from geoft.datamodules import GenericNonGeoClassificationDataModule, GenericNonGeoSegmentationDataModule
from geoft.datasets import GenericNonGeoSegmentationDataset, NotGeoreferencedWarning, validate_dataset

pytestmark = pytest.mark.real_data

S2_BANDS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
BEN_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def _listing(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_sen1floods11_chip(real_data, tmp_path):
    root = real_data / "sen1floods11_sample"
    before = _listing(root)
    dm = GenericNonGeoSegmentationDataModule(
        num_classes=2,
        batch_size=1,
        train_data_root=root,
        img_grep="*_S2Hand.tif",
        label_grep="*_LabelHand.tif",
        dataset_bands=S2_BANDS,
        output_bands=["B2", "B3", "B4", "B8A", "B11", "B12"],  # the six Prithvi bands
        constant_scale=0.0001,
        no_data_replace=0,
        ignore_index=-1,
        class_names=["not water", "water"],
        stats_cache_dir=str(tmp_path / "cache"),
    )
    dm.setup("fit")  # the data folder has no write bit: statistics are cached in stats_cache_dir
    assert _listing(root) == before and len(list((tmp_path / "cache").glob("*.json"))) == 1
    sample = dm.train_dataset[0]
    assert sample["image"].shape == (6, 512, 512) and sample["filename"].endswith("Spain_7370579_S2Hand.tif")
    with rasterio.open(root / "Spain_7370579_S2Hand.tif") as src:
        b4 = src.read(4).astype("float32") * 0.0001
        assert "EPSG" in sample["crs"] and sample["transform"] == tuple(src.transform)[:6]
    assert torch.allclose(sample["image"][2], torch.from_numpy(b4))
    mask = sample["mask"]
    assert (mask == -1).sum() == 99 and (mask == 1).sum() == 70035 and (mask == 0).sum() == 192010
    assert 0.05 < dm.means[2] < 0.3  # TOA red reflectance
    # water pixels are darker in NIR than the rest: the label and the image line up
    nir = sample["image"][3]
    assert nir[mask == 1].mean() < nir[mask == 0].mean()
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert abs(float(batch["image"].mean())) < 0.5
    # without dataset_bands, output bands are found by the files' band descriptions (B1..B12)
    by_description = GenericNonGeoSegmentationDataset(
        root,
        2,
        image_grep="*_S2Hand.tif",
        label_grep="*_LabelHand.tif",
        output_bands=["B4", "B8A"],
        constant_scale=0.0001,
        no_data_replace=0,
        ignore_index=-1,
    )
    assert torch.equal(by_description[0]["image"][0], sample["image"][2])


def test_ukis_csmask_npz_as_non_georeferenced_tiffs(real_data, tmp_path, tif):
    for name in ("sentinel2", "landsat7"):
        arrays = np.load(real_data / "ukis_csmask_cloud_shadow" / f"{name}.npz")
        tif(tmp_path / "img" / f"{name}.tif", arrays["img"].transpose(2, 0, 1).copy(), crs=None)
        tif(tmp_path / "msk" / f"{name}.tif", arrays["msk"][..., 0].copy(), crs=None)
    with pytest.warns(NotGeoreferencedWarning, match="2 of 2 images .* not georeferenced"):
        ds = GenericNonGeoSegmentationDataset(
            tmp_path / "img",
            5,
            label_data_root=tmp_path / "msk",
            dataset_bands=["BLUE", "GREEN", "RED", "NIR", "SWIR1", "SWIR2"],
            chip_size=256,
            ignore_index=255,
        )
    sample = ds[0]
    assert sample["crs"] is None and sample["image"].shape == (6, 256, 256)
    assert ds.rgb_indices == [2, 1, 0]
    image, mask = sample["image"], sample["mask"]
    cloud, shadow = mask == 4, mask == 0
    # cloud is bright, shadow dark, in the blue band
    assert image[0][cloud].mean() > 2 * image[0][shadow].mean()


def test_bigearthnet_band_folders_multi_label(real_data, tmp_path):
    root = real_data / "bigearthnet_s2_example"
    rows, names = [], set()
    for meta in sorted(root.glob("*/*_labels_metadata.json")):
        labels = json.loads(meta.read_text())["labels"]
        rows.append([meta.parent.name, ";".join(labels)])
        names.update(labels)
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "labels"], *rows])
    class_names = sorted(names)
    dm = GenericNonGeoClassificationDataModule(
        num_classes=len(class_names),
        class_names=class_names,
        multi_label=True,
        batch_size=3,
        train_data_root=root,
        train_labels_file=tmp_path / "labels.csv",
        img_grep="S2*",
        band_file_pattern="*_{band}.tif",
        dataset_bands=BEN_BANDS,
        output_bands=["B02", "B03", "B04", "B8A", "B11", "B12"],
        stats_cache_dir=str(tmp_path / "cache"),
    )
    dm.setup("fit")
    assert len(dm.train_dataset) == 6
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (3, 6, 120, 120)  # 20 m bands resampled to the 10 m grid
    for filename, target in zip(batch["filename"], batch["label"]):
        folder = filename.rstrip("/").split("/")[-1]
        expected = json.loads((root / folder / f"{folder}_labels_metadata.json").read_text())["labels"]
        assert sorted(class_names[i] for i in torch.nonzero(target).flatten().tolist()) == sorted(expected)
    sample = dm.train_dataset[0]
    with rasterio.open(next((root / sample["filename"].split("/")[-1]).glob("*_B02.tif"))) as src:
        assert sample["transform"] == tuple(src.transform)[:6]
        assert torch.equal(sample["image"][0], torch.from_numpy(src.read(1).astype("float32")))


def test_hls_chip_float32_nodata_predict(real_data, tmp_path):
    with rasterio.open(real_data / "hls_l30_chip_terratorch" / "hls_l30_texas_224.tif") as src:
        data, profile = src.read(), src.profile
    data[:, :10, :10] = -9999  # put a nodata corner into a copy
    with rasterio.open(tmp_path / "hls.tif", "w", **profile) as dst:
        dst.write(data)
    bands = ["COASTAL", "BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2", "CIRRUS", "TIR_1", "TIR_2"]
    dm = GenericNonGeoSegmentationDataModule(
        num_classes=2,
        predict_data_root=tmp_path / "hls.tif",
        dataset_bands=bands,
        output_bands=["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"],
        no_data_replace=0,
        constant_scale=0.0001,
        means=[0.05] * 6,
        stds=[0.02] * 6,
    )
    dm.setup("predict")
    sample = dm.predict_dataset[0]
    assert sample["image"].dtype == torch.float32 and sample["image"].shape == (6, 224, 224)
    assert (sample["image"][:, :10, :10] == 0).all() and sample["image"][:, 20:, 20:].abs().max() > 0.01
    assert "UTM zone 14N" in sample["crs"]
    assert validate_dataset(dm) == []
