"""GenericNonGeoSegmentationDataModule: pairing by name, bands, time stacks, sizes, predict, transforms."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch

from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datasets import GenericNonGeoSegmentationDataset
from geoft.errors import ConfigError, DataError


def _dm(root, **kw):
    args = dict(
        num_classes=3,
        batch_size=2,
        train_data_root=root / "images",
        train_label_data_root=root / "labels",
        val_data_root=root / "images",
        val_label_data_root=root / "labels",
        img_grep="*_img.tif",
        label_grep="*_lbl.tif",
        means=[0.0, 0.0, 0.0],
        stds=[1.0, 1.0, 1.0],
    )
    args.update(kw)
    return GenericNonGeoSegmentationDataModule(**args)


def test_pairs_by_name_not_sort_order(tmp_path, tif):
    # label names sort differently from image names: pairing must follow the shared name part
    names = ["zeta", "alpha", "mid", "beta"]
    random.Random(0).shuffle(names)
    for i, name in enumerate(names):
        tif(tmp_path / "img" / f"{name}_S2.tif", np.full((2, 8, 8), i, dtype="int16"))
        tif(tmp_path / "lab" / f"LBL_{name}.tif", np.full((8, 8), i % 3, dtype="uint8"))
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "img", 3, label_data_root=tmp_path / "lab", image_grep="*_S2.tif", label_grep="LBL_*.tif"
    )
    assert len(ds) == 4
    for i in range(4):
        s = ds[i]
        value = int(s["image"][0, 0, 0])
        assert int(s["mask"][0, 0]) == value % 3
        assert s["filename"].endswith(f"{names[value]}_S2.tif")


def test_batch_contract_and_normalisation(seg_folder):
    root = seg_folder()
    dm = _dm(root, means=[100.0, 200.0, 300.0], stds=[2.0, 4.0, 8.0])
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].dtype == torch.float32 and batch["image"].shape == (2, 3, 16, 16)
    assert batch["mask"].dtype == torch.int64 and batch["mask"].shape == (2, 16, 16)
    assert len(batch["filename"]) == 2 and all(c and "UTM zone 33N" in c for c in batch["crs"])
    assert all(len(t) == 6 and t[0] == 10.0 for t in batch["transform"])
    raw = batch["image"].clone()
    out = dm.on_after_batch_transfer(batch, 0)
    expected = (raw - torch.tensor([100.0, 200.0, 300.0]).view(1, 3, 1, 1)) / torch.tensor(
        [2.0, 4.0, 8.0]
    ).view(1, 3, 1, 1)
    assert torch.allclose(out["image"], expected)


def test_missing_and_extra_labels_are_named(seg_folder):
    root = seg_folder(names=["a", "b", "c"])
    (root / "labels" / "b_lbl.tif").rename(root / "labels" / "q_lbl.tif")
    with pytest.raises(DataError) as err:
        _dm(root).setup("fit")
    msg = str(err.value)
    assert "No label for image" in msg and "b_img.tif" in msg
    assert "q_lbl.tif" in msg and "has no image" in msg


def test_greps_that_do_not_share_names_get_a_hint(seg_folder):
    root = seg_folder(names=["a", "b"])
    with pytest.raises(DataError, match="No names match at all"):
        _dm(root, img_grep="*.tif", label_grep="*.tif").setup("fit")


def test_split_files_select_samples(seg_folder, tmp_path):
    root = seg_folder()
    split = tmp_path / "train.txt"
    split.write_text("a\nc_img.tif\n")
    dm = _dm(root, train_split=split)
    dm.setup("fit")
    assert sorted(p.split("/")[-1] for p in dm.train_dataset.filenames) == ["a_img.tif", "c_img.tif"]
    split.write_text("b_img.tif,b_lbl.tif\nd_img.tif,d_lbl.tif\n")  # CSV rows: first cell names the sample
    dm = _dm(root, train_split=split)
    dm.setup("fit")
    assert [p.split("/")[-1] for p in dm.train_dataset.filenames] == ["b_img.tif", "d_img.tif"]
    split.write_text("a\nnope\n")
    with pytest.raises(DataError, match="'nope'"):
        _dm(root, train_split=split).setup("fit")


def test_output_bands_select_and_reorder(seg_folder):
    root = seg_folder(bands=4)
    dm = _dm(
        root,
        dataset_bands=["BLUE", "GREEN", "RED", "NIR"],
        output_bands=["NIR", "BLUE"],
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
    )
    dm.setup("fit")
    ds = dm.train_dataset
    sample = ds[0]
    import rasterio

    with rasterio.open(ds.samples[0].image) as src:
        raw = src.read().astype("float32")
    assert torch.equal(sample["image"], torch.from_numpy(raw[[3, 0]]))
    with pytest.raises(ConfigError, match="SWIR"):
        _dm(root, dataset_bands=["BLUE", "GREEN", "RED", "NIR"], output_bands=["SWIR"]).setup("fit")


def test_rgb_indices_found_by_band_name(seg_folder):
    root = seg_folder(bands=4)
    dm = _dm(root, dataset_bands=["NIR", "BLUE", "GREEN", "RED"], means=[0.0] * 4, stds=[1.0] * 4)
    dm.setup("fit")
    assert dm.train_dataset.rgb_indices == [3, 2, 1]


@pytest.mark.parametrize("order", ["channel_major", "time_major"])
def test_multi_temporal_band_order(tmp_path, tif, order):
    c, t = 3, 2
    data = np.zeros((c * t, 8, 8), dtype="float32")
    for band in range(c):
        for step in range(t):
            index = band * t + step if order == "channel_major" else step * c + band
            data[index] = 10 * band + step  # value encodes (band, time)
    tif(tmp_path / "img" / "x.tif", data)
    tif(tmp_path / "lab" / "x.tif", np.zeros((8, 8), dtype="uint8"))
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "img",
        2,
        label_data_root=tmp_path / "lab",
        dataset_bands=["B", "G", "R"],
        output_bands=["R", "B"],
        expand_temporal_dimension=True,
        temporal_order=order,
    )
    image = ds[0]["image"]
    assert image.shape == (2, 2, 8, 8)
    assert image[:, :, 0, 0].tolist() == [[20.0, 21.0], [0.0, 1.0]]


def test_mixed_sizes_clear_error_or_chip_size(tmp_path, tif):
    for i, size in enumerate([16, 16, 20]):
        tif(tmp_path / "img" / f"s{i}.tif", np.ones((2, size, size), dtype="uint8"))
        tif(tmp_path / "lab" / f"s{i}.tif", np.ones((size, size), dtype="uint8"))
    args = dict(
        num_classes=2,
        batch_size=3,
        train_data_root=tmp_path / "img",
        train_label_data_root=tmp_path / "lab",
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
    )
    dm = GenericNonGeoSegmentationDataModule(**args)
    dm.setup("fit")
    with pytest.raises(DataError, match=r"2 different sizes.*16x16: 2.*20x20: 1"):
        dm.train_dataloader()
    dm = GenericNonGeoSegmentationDataModule(**args, chip_size=18, ignore_index=-1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (3, 2, 18, 18)
    small = [m for m, f in zip(batch["mask"], batch["filename"]) if not f.endswith("s2.tif")]
    assert all((m[16:, :] == -1).all() and (m[:16, :16] == 1).all() for m in small)
    big = [t for t, f in zip(batch["transform"], batch["filename"]) if f.endswith("s2.tif")][0]
    assert big[2] == 500000.0 + 10.0 and big[5] == 5000000.0 - 10.0  # centre crop moved the origin by 1 px


def test_pad_to_multiple(seg_folder):
    root = seg_folder(size=13)
    dm = _dm(root, pad_to_multiple=8, ignore_index=255)
    dm.setup("fit")
    sample = dm.train_dataset[0]
    assert sample["image"].shape[-2:] == (16, 16) and sample["mask"].shape == (16, 16)
    assert (sample["mask"][13:, :] == 255).all() and (sample["image"][:, 13:, :] == 0).all()
    with pytest.raises(ConfigError, match="ignore_index"):
        _dm(root, pad_to_multiple=8).setup("fit")


def test_predict_without_labels_any_layout(tmp_path, tif):
    tif(tmp_path / "p" / "deep" / "one.tif", np.ones((3, 8, 8), dtype="float32"))
    tif(tmp_path / "p" / "two.tif", np.ones((3, 8, 8), dtype="float32"))
    dm = GenericNonGeoSegmentationDataModule(
        num_classes=2, predict_data_root=tmp_path / "p", means=[0.0] * 3, stds=[1.0] * 3, batch_size=2
    )
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert "mask" not in batch and batch["image"].shape == (2, 3, 8, 8)
    single = GenericNonGeoSegmentationDataModule(
        num_classes=2, predict_data_root=tmp_path / "p" / "two.tif", means=[0.0] * 3, stds=[1.0] * 3
    )
    single.setup("predict")
    assert len(single.predict_dataset) == 1


def test_reduce_zero_label_and_no_label_replace(tmp_path, tif):
    label = np.array([[0, 1], [2, 3]], dtype="uint8")
    tif(tmp_path / "i" / "a.tif", np.ones((1, 2, 2), dtype="uint8"))
    tif(tmp_path / "l" / "a.tif", label)
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "i", 3, label_data_root=tmp_path / "l", reduce_zero_label=True, ignore_index=-1
    )
    assert ds[0]["mask"].tolist() == [[-1, 0], [1, 2]]
    with pytest.raises(ConfigError, match="ignore_index"):
        GenericNonGeoSegmentationDataset(
            tmp_path / "i", 3, label_data_root=tmp_path / "l", reduce_zero_label=True
        )
    tif(tmp_path / "l2" / "a.tif", np.array([[1, np.nan], [0, 1]], dtype="float32"))
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "i", 2, label_data_root=tmp_path / "l2", no_label_replace=1
    )
    assert ds[0]["mask"].tolist() == [[1, 1], [0, 1]]


def test_nodata_replaced_and_scaled(tmp_path, tif):
    data = np.array([[[-9999, 5000], [np.nan, 1000]]], dtype="float32")
    tif(tmp_path / "i" / "a.tif", data, nodata=-9999)
    tif(tmp_path / "l" / "a.tif", np.zeros((2, 2), dtype="uint8"))
    ds = GenericNonGeoSegmentationDataset(
        tmp_path / "i", 2, label_data_root=tmp_path / "l", constant_scale=0.0001, no_data_replace=-1
    )
    assert torch.allclose(ds[0]["image"], torch.tensor([[[-1.0, 0.5], [-1.0, 0.1]]]))


def test_non_georeferenced_warns_once(tmp_path, tif):
    for n in "ab":
        tif(tmp_path / "i" / f"{n}.tif", np.ones((1, 4, 4), dtype="uint8"), crs=None)
        tif(tmp_path / "l" / f"{n}.tif", np.ones((4, 4), dtype="uint8"), crs=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = GenericNonGeoSegmentationDataset(tmp_path / "i", 2, label_data_root=tmp_path / "l")
    geo = [w for w in caught if "not georeferenced" in str(w.message)]
    assert len(geo) == 1 and "cannot be shown on a map" in str(geo[0].message)
    assert ds[0]["crs"] is None and ds[0]["transform"] is None


def test_augmentation_keeps_image_and_mask_aligned(tmp_path, tif):
    rng = np.random.default_rng(0)
    label = np.kron(rng.integers(0, 3, (4, 4)), np.ones((8, 8))).astype("uint8")  # 32x32 blocks
    tif(tmp_path / "i" / "a.tif", label[None].astype("float32").repeat(2, 0))
    tif(tmp_path / "l" / "a.tif", label)
    dm = GenericNonGeoSegmentationDataModule(
        num_classes=3,
        batch_size=1,
        train_data_root=tmp_path / "i",
        train_label_data_root=tmp_path / "l",
        means=[0.0, 0.0],
        stds=[1.0, 1.0],
        ignore_index=-1,
        train_transform=[
            "hflip",
            "vflip",
            "rot90",
            {"class_path": "kornia.augmentation.RandomRotation", "init_args": {"degrees": 40.0, "p": 1.0}},
        ],
    )
    dm.setup("fit")
    for _ in range(3):
        batch = dm.batch_transform("train")(next(iter(dm.train_dataloader())))
        image, mask = batch["image"][0, 0], batch["mask"][0]
        known = mask != -1
        assert (mask == -1).any()  # rotation corners are ignore_index, not class 0
        # the mask moved with the image: away from block edges the rounded image equals the mask
        agree = (image[known].round().long() == mask[known]).float().mean()
        assert agree > 0.85


def test_means_from_file_drop_last_workers_and_predict_bands(seg_folder, tmp_path, tif):
    root = seg_folder(names=["a", "b", "c"], bands=4)
    tif(tmp_path / "pred" / "p_img.tif", np.stack([np.full((8, 8), 5, "uint8"), np.full((8, 8), 7, "uint8")]))
    (tmp_path / "means.txt").write_text("1\n2\n3\n")
    (tmp_path / "stds.yaml").write_text("stds: [1, 1, 1]\n")
    dm = _dm(
        root,
        batch_size=2,
        num_workers=1,
        dataset_bands=["B", "G", "R", "N"],
        output_bands=["B", "G", "R"],
        predict_dataset_bands=["R", "N"],
        predict_output_bands=["N", "R"],
        means=str(tmp_path / "means.txt"),
        stds=str(tmp_path / "stds.yaml"),
        predict_data_root=tmp_path / "pred",  # 2-band files for prediction
    )
    assert dm.means == [1.0, 2.0, 3.0] and dm.stds == [1.0, 1.0, 1.0]
    dm.setup("fit")
    assert sum(b["image"].shape[0] for b in dm.train_dataloader()) == 2  # drop_last drops the odd sample
    assert dm.build_dataset("predict")[0]["image"][:, 0, 0].tolist() == [7.0, 5.0]
    with pytest.raises(
        ConfigError, match="means/stds have 3 values but the predict images have 2 output bands"
    ):
        dm.setup("predict")
    with pytest.raises(ConfigError, match="no test_data_root is configured"):
        dm.test_dataloader()
