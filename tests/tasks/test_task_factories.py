"""Tasks with geoft's real EncoderDecoderFactory (timm_resnet18 and prithvi_eo_tiny at depth 1)."""

from __future__ import annotations

from typing import Any

import torch

from geoft.tasks import ClassificationTask, PixelwiseRegressionTask, SemanticSegmentationTask

RESNET = {"backbone": "timm_resnet18", "backbone_pretrained": False, "backbone_in_chans": 3}
PRITHVI = {
    "backbone": "prithvi_eo_tiny",
    "backbone_pretrained": False,
    "backbone_depth": 1,
    "backbone_bands": ["BLUE", "GREEN", "RED"],
}


def test_segmentation_resnet_with_aux_head_and_frozen_backbone(tk: Any, tmp_path: Any) -> None:
    dm = tk.DataModule("segmentation", n=4, size=32, ignore_index=-1)
    task = SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={**RESNET, "decoder": "FCNDecoder", "num_classes": 3},
        aux_heads=[{"name": "aux", "decoder": "FCNDecoder"}],
        aux_loss={"aux": 0.4},
        ignore_index=-1,
        freeze_backbone=True,
        lr_overrides={"decoder": 5e-3},
    )
    frozen = {n: p.detach().clone() for n, p in task.model.encoder.named_parameters()}
    assert frozen and not any(p.requires_grad for p in task.model.encoder.parameters())
    trainer = tk.trainer(max_epochs=1)
    trainer.fit(task, dm)
    assert {"val/loss", "val/aux_aux_loss", "val/mIoU"} <= set(trainer.callback_metrics)
    for name, param in task.model.encoder.named_parameters():
        assert torch.equal(frozen[name], param), name
    trainer.save_checkpoint(tmp_path / "seg.ckpt")
    loaded = SemanticSegmentationTask.load_from_checkpoint(tmp_path / "seg.ckpt")
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(task.eval()(x).output, loaded.eval()(x).output, atol=1e-5)


def test_prithvi_tiny_classification_and_regression(tk: Any) -> None:
    dm = tk.DataModule("classification", n=8, size=32, num_classes=2)
    task = ClassificationTask(
        model_factory="EncoderDecoderFactory",
        model_args={**PRITHVI, "decoder": "IdentityDecoder", "num_classes": 2},
        output_on_inference="probabilities",
    )
    trainer = tk.trainer(max_epochs=1)
    trainer.fit(task, dm)
    assert "val/F1_Score" in trainer.callback_metrics
    out = trainer.predict(task, dm)[0]
    assert out["probabilities"].shape == (4, 2)

    dm = tk.DataModule("regression", n=4, size=32)
    task = PixelwiseRegressionTask(
        model_factory="EncoderDecoderFactory",
        model_args={**PRITHVI, "decoder": "FCNDecoder"},
        freeze_backbone=True,
    )
    trainer = tk.trainer(max_epochs=1)
    trainer.fit(task, dm)
    assert torch.isfinite(trainer.callback_metrics["val/RMSE"])
