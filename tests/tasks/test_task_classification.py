"""ClassificationTask and MultiLabelClassificationTask: losses, metrics, prediction, checkpoints."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from geoft.errors import ConfigError
from geoft.tasks import ClassificationTask, MultiLabelClassificationTask


@pytest.mark.parametrize(
    ("loss", "ignore_index"), [("ce", None), ("bce", -1), ("focal", None), (["ce", "focal"], -1)]
)
def test_classification_trains(tk: Any, loss: Any, ignore_index: int | None) -> None:
    dm = tk.DataModule("classification", n=32, size=8, batch_size=8, num_classes=3)
    task = ClassificationTask(
        model=tk.ImageNet(3, 3),
        model_args={"num_classes": 3},
        loss=loss,
        ignore_index=ignore_index,
        lr=0.02,
        class_names=["a", "b", "c"],
    )
    trainer = tk.trainer(max_epochs=3)
    batch = next(iter(dm.train_dataloader()))

    def train_loss() -> float:
        with torch.no_grad():
            return float(task.loss_handler.compute(task(batch["image"]), batch["label"])["loss"])

    before = train_loss()
    trainer.fit(task, dm)
    assert train_loss() < before
    for name in (
        "Accuracy",
        "Accuracy_Micro",
        "F1_Score",
        "Precision",
        "Recall",
        "Class_Accuracy_b",
        "Class_F1_c",
    ):
        assert f"val/{name}" in trainer.callback_metrics, name
    assert task.confusion_matrices["val"]["class_names"] == ["a", "b", "c"]
    assert sum(map(sum, task.confusion_matrices["val"]["matrix"])) == 32


def test_classification_predict_and_checkpoint(tk: Any, tmp_path: Any) -> None:
    dm = tk.DataModule("classification", n=8, size=8, num_classes=2)
    task = ClassificationTask(
        model=tk.ImageNet(3, 2),
        model_args={"num_classes": 2},
        output_on_inference=["probabilities", "logits"],
    )
    trainer = tk.trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(task, dm)
    out = trainer.predict(task, dm)[0]
    assert out["prediction"].shape == (4,) and out["probabilities"].shape == (4, 2)
    assert torch.equal(out["probabilities"].argmax(1), out["prediction"])
    assert out["filename"][0] == "chip_0.tif"
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    loaded = ClassificationTask.load_from_checkpoint(tmp_path / "c.ckpt", model=tk.ImageNet(3, 2))
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(task.eval()(x).output, loaded.eval()(x).output)
    with pytest.raises(ConfigError, match="tiled inference does not apply"):
        ClassificationTask(
            model=tk.ImageNet(3, 2), model_args={"num_classes": 2}, tiled_inference_parameters={}
        )


@pytest.mark.parametrize(("loss", "ignore_index"), [("bce", None), ("balanced_bce", -1)])
def test_multilabel_trains(tk: Any, loss: str, ignore_index: int | None) -> None:
    dm = tk.DataModule("multilabel", n=32, size=8, batch_size=8, num_classes=3)
    if ignore_index is not None:
        dm.train_ds.targets[:4, 0] = ignore_index
    task = MultiLabelClassificationTask(
        model=tk.ImageNet(3, 3), model_args={"num_classes": 3}, loss=loss, ignore_index=ignore_index, lr=0.02
    )
    trainer = tk.trainer(max_epochs=3)
    trainer.fit(task, dm)
    for name in ("Accuracy", "F1_Score", "Precision", "Recall", "AUROC", "Class_F1_0"):
        assert f"val/{name}" in trainer.callback_metrics, name
    assert trainer.callback_metrics["val/AUROC"] > 0.7
    assert task.confusion_matrices == {}
    out = trainer.predict(task, dm)[0]
    assert out["prediction"].shape == (8, 3) and set(out["prediction"].unique().tolist()) <= {0, 1}


def test_multilabel_output_variants(tk: Any) -> None:
    task = MultiLabelClassificationTask(
        model=tk.ImageNet(3, 4),
        model_args={"num_classes": 4},
        output_on_inference=["prediction", "probabilities"],
    )
    batch = {"image": torch.randn(2, 3, 8, 8), "filename": ["x", "y"]}
    out = task.predict_step(batch, 0)
    assert torch.equal(out["prediction"], (out["probabilities"] > 0.5).long())
    assert out["crs"] is None and out["filename"] == ["x", "y"]
    with pytest.raises(ConfigError, match="valid names are: bce, balanced_bce"):
        MultiLabelClassificationTask(model=tk.ImageNet(3, 4), model_args={"num_classes": 4}, loss="dice")
