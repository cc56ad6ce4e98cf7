"""GenericMultiModalDataModule: one file per date per modality, and image-level (scalar) labels."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from geoft.datamodules import GenericMultiModalDataModule
from geoft.errors import DataError
from geoft.tasks import ClassificationTask, ScalarRegressionTask
from tests.data.conftest import write_tif
from tests.data.test_data_multimodal import NAMES, datamodule, make_data

DATES = {"S2": ("20200601", "20200105"), "S1": ("20200105", "20200601")}


def dated_data(root: Path) -> Path:
    """``<name>_<modality>_<yyyymmdd>.tif`` per date (valued by month) and one label per sample."""
    for i, name in enumerate(NAMES[:2]):
        for modality, bands in (("S2", 3), ("S1", 2)):
            for date in DATES[modality]:
                value = np.full((bands, 16, 16), float(date[4:6]), np.float32)
                write_tif(root / modality / f"{name}_{modality}_{date}.tif", value)
        write_tif(root / "label" / f"{name}_LabelHand.tif", np.full((16, 16), i % 2, np.uint8))
    return root


def dated_datamodule(root: Path, **kwargs) -> GenericMultiModalDataModule:
    return datamodule(
        root,
        image_grep={"S2": "*_S2_*.tif", "S1": "*_S1_*.tif"},
        time_grep={"S2": "{sample}_S2_{date:%Y%m%d}.tif", "S1": "{sample}_S1_{date:%Y%m%d}.tif"},
        **kwargs,
    )


def test_one_file_per_date_per_modality_in_date_order(tmp_path: Path) -> None:
    dm = dated_datamodule(dated_data(tmp_path), use_metadata=True)
    dm.setup("fit")
    batch = dm.normalize(next(iter(dm.train_dataloader())))
    assert batch["image"]["S2"].shape == (2, 3, 2, 16, 16) and batch["image"]["S1"].shape == (2, 2, 2, 16, 16)
    sample = dm.train_dataset[0]
    for modality in ("S2", "S1"):  # January first, June second, whatever the file order
        assert sample["image"][modality][0, :, 0, 0].tolist() == [1.0, 6.0]
    assert sample["temporal_coords"].tolist() == [[2020.0, 5.0], [2020.0, 153.0]]
    assert batch["temporal_coords"].shape == (2, 2, 2) and batch["location_coords"].shape == (2, 2)


def test_a_date_missing_for_one_modality_is_named_before_training(tmp_path: Path) -> None:
    root = dated_data(tmp_path)
    (root / "S2" / f"{NAMES[0]}_S2_20200105.tif").unlink()  # zeta_1's S2 seen on 6 January, S1 on the 5th
    moved = write_tif(root / "S2" / f"{NAMES[0]}_S2_20200106.tif", np.zeros((3, 16, 16), np.float32))
    with pytest.raises(DataError) as err:
        dated_datamodule(root).setup("fit")
    text = str(err.value)
    assert f"Sample {NAMES[0]!r}: modality 'S1'" in text and "no date 2020-01-06, which 'S2' has" in text
    assert str(moved) in text and NAMES[1] not in text
    dm = dated_datamodule(root, allow_missing_modalities=True)  # not a missing modality: still refused
    with pytest.raises(DataError, match="2020-01-06"):
        dm.setup("fit")


class TinyClassifier(nn.Module):
    def __init__(self, in_chans: int, outputs: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("task", ["classification", "scalar_regression"])
def test_scalar_labels_from_a_labels_file_train_a_step(tmp_path: Path, task: str) -> None:
    root = make_data(tmp_path)
    labels = tmp_path / "labels.csv"
    if task == "classification":  # by sample key, or by a modality's file name; class names
        labels.write_text("sample,label\nzeta_1,water\nalpha_2_S1Hand.tif,land\nmid_3,water\nbeta_4,land\n")
    else:
        labels.write_text("sample,biomass\nzeta_1,1.5\nalpha_2,2.0\nmid_3,0.5\nbeta_4,3.0\n")
    dm = datamodule(
        root,
        task=task,
        num_classes=2 if task == "classification" else None,
        train_label_data_root=str(labels),
        concat_bands=True,
    )
    dm.setup("fit")
    assert len(dm.train_dataset) == 4
    by_key = {r.key: dm.train_dataset[i]["label"] for i, r in enumerate(dm.train_dataset.samples)}
    if task == "classification":
        assert dm.class_names == ["land", "water"]
        assert (
            by_key["alpha_2"].item() == 0
            and by_key["zeta_1"].item() == 1
            and by_key["zeta_1"].dtype == torch.int64
        )
        module = ClassificationTask(model=TinyClassifier(5, 2), model_args={"num_classes": 2})
    else:
        assert by_key["beta_4"].item() == 3.0 and by_key["beta_4"].dtype == torch.float32
        module = ScalarRegressionTask(model=TinyClassifier(5, 1))
    trainer = L.Trainer(
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 1


def test_scalar_labels_name_what_is_missing(tmp_path: Path) -> None:
    root = make_data(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("zeta_1,1\nalpha_2,0\nmid_3,1\n")
    with pytest.raises(DataError, match=r"'beta_4'.*beta_4_S2Hand\.tif.*not listed in labels file"):
        datamodule(root, task="classification", train_label_data_root=str(labels)).setup("fit")
    with pytest.raises(Exception, match="labels file"):
        datamodule(root, task="classification", train_label_data_root=str(root / "label")).setup("fit")
