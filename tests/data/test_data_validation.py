"""validate_dataset reports every problem of every split at once; pairing keys; transform configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from kornia.augmentation import RandomHorizontalFlip, RandomRotation90

from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datamodules.transforms import BatchTransform, build_augmentations
from geoft.datasets import format_problems, validate_dataset
from geoft.datasets.pairing import file_key
from geoft.errors import ConfigError


def test_validate_reports_every_problem_at_once(tmp_path, tif):
    img, lab = tmp_path / "train" / "img", tmp_path / "train" / "lab"
    ok = np.ones((2, 8, 8), dtype="uint16")
    tif(img / "good.tif", ok)
    tif(lab / "good.tif", np.zeros((8, 8), dtype="uint8"))
    tif(img / "nolabel.tif", ok)  # missing label
    tif(lab / "orphan.tif", np.zeros((8, 8), dtype="uint8"))  # extra label
    tif(img / "size.tif", ok)
    tif(lab / "size.tif", np.zeros((9, 8), dtype="uint8"))  # size mismatch
    (img / "broken.tif").write_bytes(b"not a tiff")
    tif(lab / "broken.tif", np.zeros((8, 8), dtype="uint8"))  # corrupt image
    tif(img / "range.tif", ok)
    tif(lab / "range.tif", np.full((8, 8), 9, dtype="uint8"))  # label out of range
    tif(img / "bands.tif", np.ones((3, 8, 8), dtype="uint16"))
    tif(lab / "bands.tif", np.zeros((8, 8), dtype="uint8"))  # wrong band count
    tif(img / "empty.tif", np.zeros((2, 8, 8), dtype="uint16"), nodata=0)
    tif(lab / "empty.tif", np.zeros((8, 8), dtype="uint8"))  # all nodata
    nan = np.ones((2, 8, 8), dtype="float32")
    nan[0, 0, 0] = np.nan
    tif(img / "nan.tif", nan)
    tif(lab / "nan.tif", np.zeros((8, 8), dtype="uint8"))  # NaN (reported; replaced by no_data_replace)
    (tmp_path / "val").mkdir()  # empty folder
    config = {
        "data": {
            "class_path": "geoft.datamodules.GenericNonGeoSegmentationDataModule",
            "init_args": {
                "num_classes": 2,
                "dataset_bands": ["A", "B"],
                "no_data_replace": 0,
                "train_data_root": str(img),
                "train_label_data_root": str(lab),
                "val_data_root": str(tmp_path / "val"),
                "means": [0, 0],
                "stds": [1, 1],
            },
        }
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    problems = validate_dataset(path)
    codes = {(p.split, p.code) for p in problems}
    expected = {
        ("train", "missing_label"),
        ("train", "extra_label"),
        ("train", "size_mismatch"),
        ("train", "corrupt_file"),
        ("train", "label_out_of_range"),
        ("train", "band_count"),
        ("train", "all_nodata"),
        ("train", "nan_values"),
        ("train", "class_absent"),
        ("val", "empty_folder"),
    }
    assert expected <= codes, codes
    by_code = {p.code: p for p in problems}
    assert "nolabel.tif" in by_code["missing_label"].message and "orphan.tif" in by_code["extra_label"].path
    assert by_code["nan_values"].severity == "warning"
    report = format_problems(problems)
    assert report.startswith(f"{sum(p.severity == 'error' for p in problems)} errors")
    # the strict datamodule refuses the same data with one message listing them
    dm = GenericNonGeoSegmentationDataModule(**config["data"]["init_args"])
    with pytest.raises(Exception, match=r"(?s)problems:.*nolabel\.tif.*orphan\.tif"):
        dm.setup("fit")


def test_validate_reports_config_errors():
    problems = validate_dataset(
        {"class_path": "GenericNonGeoSegmentationDataModule", "init_args": {"num_classes": 2}}
    )
    assert [p.code for p in problems] == ["config"] and "No data root" in problems[0].message
    assert validate_dataset({"trainer": {}})[0].code == "config"


@pytest.mark.parametrize(
    ("rel", "pattern", "key"),
    [
        ("Spain_1_S2Hand.tif", "*_S2Hand.tif", "Spain_1"),
        ("Spain_1_LabelHand.tif", "*_LabelHand.tif", "Spain_1"),
        ("a.tif", "*", "a"),
        ("tile_3/mask.tif", "*/mask.tif", "tile_3"),
        ("x_2020_B1.tiff", "x_*_B?.tiff", "20201"),
    ],
)
def test_pairing_keys(rel, pattern, key):
    assert file_key(rel, pattern) == key


def test_transforms_from_yaml_forms():
    augs = build_augmentations(
        [
            "hflip",
            "RandomVerticalFlip",
            {"class_path": "kornia.augmentation.RandomRotation90", "init_args": {"times": [0, 3], "p": 1.0}},
            {"class_path": "albumentations.HorizontalFlip", "init_args": {"p": 0.3}},
            {"class_path": "albumentations.pytorch.ToTensorV2"},
        ]
    )
    # albumentations items run per sample (build_sample_augmentation), not in the kornia batch pipeline
    assert (
        len(augs) == 3 and isinstance(augs[0], RandomHorizontalFlip) and isinstance(augs[2], RandomRotation90)
    )
    with pytest.raises(ConfigError, match="Unknown augmentation 'Flipz'"):
        build_augmentations(["Flipz"])
    with pytest.raises(ConfigError, match="Bad init_args"):
        build_augmentations(
            [{"class_path": "kornia.augmentation.RandomHorizontalFlip", "init_args": {"nope": 1}}]
        )


def test_batch_transform_multitemporal_and_band_count():
    t = BatchTransform([1.0, 2.0], [1.0, 2.0], build_augmentations(["hflip"]), "segmentation", -1)
    image = torch.ones(2, 2, 3, 8, 8)
    image[:, 1] = 4.0
    out = t({"image": image.clone(), "mask": torch.zeros(2, 8, 8, dtype=torch.long)})
    assert out["image"].shape == (2, 2, 3, 8, 8)
    assert (out["image"][:, 0] == 0).all() and (
        out["image"][:, 1] == 1
    ).all()  # means/stds per band, all times
    assert torch.allclose(t.denormalize(out["image"]), image)
    with pytest.raises(ConfigError, match="2 values but the images have 3 bands"):
        t({"image": torch.ones(1, 3, 8, 8)})
