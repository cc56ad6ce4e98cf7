"""PixelwiseRegressionTask: training with ignore_index and NaN targets, metrics, prediction."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from geoft.errors import ConfigError
from geoft.tasks import PixelwiseRegressionTask


@pytest.mark.parametrize(
    ("loss", "ignore_index"),
    [("mse", None), ("mae", -9999), ("rmse", None), ("huber", -9999), ({"mse": 1.0, "mae": 0.5}, -9999)],
)
def test_trains_with_every_loss(tk: Any, loss: Any, ignore_index: int | None) -> None:
    dm = tk.DataModule("regression", n=8, ignore_index=ignore_index)
    task = PixelwiseRegressionTask(
        model=tk.PixelNet(3, 1, squeeze=True), loss=loss, ignore_index=ignore_index, lr=0.02
    )
    batch = next(iter(dm.val_dataloader()))

    def val_loss() -> float:
        with torch.no_grad():
            return float(task.loss_handler.compute(task(batch["image"]), batch["mask"])["loss"])

    before = val_loss()
    trainer = tk.trainer(max_epochs=4)
    trainer.fit(task, dm)
    assert val_loss() < 0.8 * before
    for name in ("RMSE", "MSE", "MAE", "R2_Score", "loss"):
        value = trainer.callback_metrics[f"val/{name}"]
        assert torch.isfinite(value), name
    assert trainer.callback_metrics["val/RMSE"] ** 2 == pytest.approx(
        float(trainer.callback_metrics["val/MSE"]), rel=1e-4
    )


def test_metrics_skip_ignored_and_nan_pixels(tk: Any) -> None:
    task = PixelwiseRegressionTask(model=tk.PixelNet(3, 1), ignore_index=-1)
    metrics = task.val_metrics
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1.0, -1.0], [float("nan"), 3.0]]])
    task.update_metrics(metrics, pred, target)
    out = metrics.compute()
    assert out["val/MAE"] == pytest.approx(2.0)  # only 1 and 3 count
    assert out["val/MSE"] == pytest.approx(5.0)


def test_predict_and_invalid_outputs(tk: Any) -> None:
    dm = tk.DataModule("regression", n=4)
    task = PixelwiseRegressionTask(model=tk.PixelNet(3, 1))  # [B, 1, H, W] output is squeezed
    out = tk.trainer().predict(task, dm)[0]
    assert set(out) == {"prediction", "filename", "crs", "transform"}
    assert out["prediction"].shape == (4, 16, 16) and out["prediction"].dtype == torch.float32
    with pytest.raises(ConfigError, match="output_on_inference"):
        PixelwiseRegressionTask(model=tk.PixelNet(3, 1), output_on_inference="probabilities")
    with pytest.raises(ConfigError, match="class_names has no meaning"):
        PixelwiseRegressionTask(model=tk.PixelNet(3, 1), class_names=["a"])
    with pytest.raises(ConfigError, match="no meaning"):
        PixelwiseRegressionTask(model=tk.PixelNet(3, 1), class_weights=[1.0])


def test_checkpoint_round_trip(tk: Any, tmp_path: Any) -> None:
    task = PixelwiseRegressionTask(model=tk.PixelNet(3, 1, squeeze=True), loss="huber", ignore_index=-1)
    trainer = tk.trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(task, tk.DataModule("regression", n=8))
    trainer.save_checkpoint(tmp_path / "r.ckpt")
    loaded = PixelwiseRegressionTask.load_from_checkpoint(
        tmp_path / "r.ckpt", model=tk.PixelNet(3, 1, squeeze=True)
    )
    assert loaded.hparams["loss"] == "huber"
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(task.eval()(x).output, loaded.eval()(x).output)
