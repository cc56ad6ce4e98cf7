"""ScalarRegressionTask with the scalar-label datamodule: trains on tiny GeoTIFFs, metrics on a known case."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from geoft.datamodules import GenericNonGeoScalarRegressionDataModule
from geoft.errors import ConfigError, DataError
from geoft.tasks import ScalarRegressionTask


def _chips(root: Path, n: int, seed: int, size: int = 16) -> Path:
    """Chips whose target is the mean of band 0 (what a small net can learn), and their labels file."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True)
    rows = ["filename,biomass"]
    for i in range(n):
        level = rng.uniform(-1, 1)
        data = rng.normal(0, 0.3, (3, size, size)).astype("float32")
        data[0] += level
        with rasterio.open(
            images / f"chip_{i}.tif",
            "w",
            driver="GTiff",
            height=size,
            width=size,
            count=3,
            dtype="float32",
            crs="EPSG:32632",
            transform=from_origin(500000 + i * 160, 4000000, 10, 10),
        ) as dst:
            dst.write(data)
        rows.append(f"chip_{i}.tif,{float(data[0].mean()):.5f}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _datamodule(tmp_path: Path, **kwargs: Any) -> GenericNonGeoScalarRegressionDataModule:
    train, val = _chips(tmp_path / "train", 16, 0), _chips(tmp_path / "val", 8, 1)
    return GenericNonGeoScalarRegressionDataModule(
        batch_size=4,
        train_data_root=train / "images",
        train_labels_file=train / "labels.csv",
        val_data_root=val / "images",
        val_labels_file=val / "labels.csv",
        means=[0.0, 0.0, 0.0],
        stds=[1.0, 1.0, 1.0],
        **kwargs,
    )


def test_trains_on_tiny_geotiffs(tmp_path: Path, tk: Any) -> None:
    dm = _datamodule(tmp_path)
    dm.setup("fit")
    sample = dm.train_dataset[3]
    assert sample["label"].dtype == torch.float32 and sample["label"].ndim == 0
    task = ScalarRegressionTask(model=tk.ImageNet(3, 1), lr=0.02)
    batch = dm.batch_transform("val")(next(iter(dm.val_dataloader())))

    def loss() -> float:
        with torch.no_grad():
            return float(
                task.loss_handler.compute(task(batch["image"]), task.prepare_target(batch["label"]))["loss"]
            )

    before = loss()
    trainer = tk.trainer(max_epochs=15)
    trainer.fit(task, dm)
    assert loss() < 0.5 * before
    for name in ("RMSE", "MSE", "MAE", "R2_Score", "loss"):
        assert f"val/{name}" in trainer.callback_metrics, name
    out = task.eval().predict_step(batch, 0)
    assert out["prediction"].shape == (4,) and out["prediction"].dtype == torch.float32


def test_metrics_on_a_known_case(tk: Any) -> None:
    task = ScalarRegressionTask(model=tk.ImageNet(3, 1), ignore_index=-999)
    pred = torch.tensor([[1.0], [2.0], [4.0], [7.0]])
    target = torch.tensor([2.0, 2.0, 2.0, -999.0])  # the last one is ignored
    task.update_metrics(task.val_metrics, pred, task.prepare_target(target))
    values = {k: float(v) for k, v in task.val_metrics.compute().items()}
    errors = np.array([-1.0, 0.0, 2.0])
    assert values["val/MSE"] == pytest.approx(np.mean(errors**2))
    assert values["val/RMSE"] == pytest.approx(math.sqrt(5 / 3))
    assert values["val/MAE"] == pytest.approx(1.0)
    # R2 = 1 - SS_res / SS_tot; the targets are constant here, so use a second case with spread
    task.val_metrics.reset()
    task.update_metrics(task.val_metrics, torch.tensor([[1.0], [2.0], [2.0]]), torch.tensor([1.0, 2.0, 3.0]))
    assert float(task.val_metrics.compute()["val/R2_Score"]) == pytest.approx(1 - 1 / 2)


def test_several_outputs_have_named_metrics(tk: Any) -> None:
    task = ScalarRegressionTask(model=tk.ImageNet(3, 2), num_outputs=2, var_names=["agb", "height"])
    pred = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 33.0]])
    target = torch.tensor([[1.0, 10.0], [2.0, 20.0], [4.0, 30.0]])
    task.update_metrics(task.val_metrics, pred, target)
    values = task.val_metrics.compute()
    assert float(values["val/MAE_agb"]) == pytest.approx(1 / 3)
    assert float(values["val/MAE_height"]) == pytest.approx(1.0)
    assert float(values["val/MAE"]) == pytest.approx(4 / 6)


def test_clear_errors(tmp_path: Path, tk: Any) -> None:
    with pytest.raises(ConfigError, match="var_names"):
        ScalarRegressionTask(model=tk.ImageNet(3, 1), var_names=["a", "b"])
    task = ScalarRegressionTask(model=tk.ImageNet(3, 3))
    with pytest.raises(ConfigError, match="1 value"):
        task.check_output(torch.zeros(2, 3), None)
    root = _chips(tmp_path / "bad", 2, 0)
    (root / "labels.csv").write_text("chip_0.tif,high\nchip_1.tif,2.0\n")
    with pytest.raises(DataError, match="not all numbers"):
        GenericNonGeoScalarRegressionDataModule(
            train_data_root=root / "images",
            train_labels_file=root / "labels.csv",
            means=[0] * 3,
            stds=[1] * 3,
        ).setup("fit")
    with pytest.raises(ConfigError, match="labels_file"):
        GenericNonGeoScalarRegressionDataModule(
            train_data_root=root / "images", means=[0] * 3, stds=[1] * 3
        ).setup("fit")
