"""The datamodules inside Lightning: batch hooks, statistics stored in checkpoints, YAML configs."""

from __future__ import annotations

import lightning as L
import torch
from jsonargparse import ArgumentParser
from kornia.augmentation import RandomRotation
from torch import nn

from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datasets import generate_demo_dataset


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Conv2d(6, 5, 1)
        self.seen: list[float] = []

    def training_step(self, batch, _):
        self.seen.append(float(batch["image"].mean()))
        return nn.functional.cross_entropy(self.net(batch["image"]), batch["mask"])

    def predict_step(self, batch, _):
        return batch["image"].mean().item(), batch["filename"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_fit_checkpoint_and_predict_restore_statistics(tmp_path):
    info = generate_demo_dataset(tmp_path / "demo", n_train=4, n_val=0, n_test=2, size=16)
    args = info.datamodule_init_args()
    args.pop("means"), args.pop("stds")
    dm = GenericNonGeoSegmentationDataModule(batch_size=2, stats_cache_dir=str(tmp_path / "c"), **args)
    trainer = L.Trainer(max_steps=2, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    model = _Tiny()
    trainer.fit(model, datamodule=dm)
    assert all(abs(m) < 1.5 for m in model.seen)  # normalised on the batch hook
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    # predicting from the checkpoint needs neither means/stds nor training data
    dm2 = GenericNonGeoSegmentationDataModule(
        num_classes=5, batch_size=2, predict_data_root=args["predict_data_root"]
    )
    out = L.Trainer(logger=False, enable_progress_bar=False, default_root_dir=tmp_path).predict(
        _Tiny(), datamodule=dm2, ckpt_path=ckpt
    )
    assert dm2.means == dm.means and dm2.stats_source == "checkpoint"
    assert len(out) == 1 and abs(out[0][0]) < 1.5 and len(out[0][1]) == 2


def test_yaml_config_with_transforms():
    parser = ArgumentParser()
    parser.add_class_arguments(GenericNonGeoSegmentationDataModule, "data")
    cfg = parser.parse_object(
        {
            "data": {
                "num_classes": 2,
                "predict_data_root": "/nonexistent",
                "means": [0, 0],
                "stds": [1, 1],
                "chip_size": [32, 32],
                "train_transform": [
                    "hflip",
                    {"class_path": "kornia.augmentation.RandomRotation", "init_args": {"degrees": 30}},
                ],
            }
        }
    )
    dm = parser.instantiate(cfg).data
    assert isinstance(dm._augmentations["train"][1], RandomRotation) and dm.chip_size == [32, 32]
