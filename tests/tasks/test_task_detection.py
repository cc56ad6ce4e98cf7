"""ObjectDetectionTask: every framework on a CNN and a ViT backbone trains, validates and predicts on tiny chips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import pytest
import torch

from geoft.datamodules.detection import GenericObjectDetectionDataModule
from geoft.datasets.detection_demo import generate_detection_chips
from geoft.errors import ConfigError
from geoft.tasks import ObjectDetectionTask

RESNET = {"backbone": "timm_resnet18", "backbone_pretrained": False, "backbone_in_chans": 3}
PRITHVI = {
    "backbone": "prithvi_eo_tiny",
    "backbone_pretrained": False,
    "backbone_depth": 1,
    "backbone_bands": ["BLUE", "GREEN", "RED"],
}
FRAMEWORKS = ("faster-rcnn", "retinanet", "fcos", "mask-rcnn")


@pytest.fixture(scope="module")
def chips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("det")
    generate_detection_chips(root, n=4, size=32, num_classes=2, max_objects=2, object_size=(6, 12), seed=5)
    return root


def datamodule(root: Path, masks: bool = False, **kwargs: Any) -> GenericObjectDetectionDataModule:
    split = {"data_root": root / "images", "label_data_root": root / "labels"}
    return GenericObjectDetectionDataModule(
        num_classes=2, batch_size=2, class_field="class", return_masks=masks, means=[0.4] * 3, stds=[0.3] * 3,
        **{f"{s}_{k}": v for s in ("train", "val", "test") for k, v in split.items()},
        predict_data_root=root / "images", **kwargs,
    )  # fmt: skip


def trainer(**kwargs: Any) -> lightning.Trainer:
    options = {
        "max_steps": 2, "accelerator": "cpu", "logger": False, "enable_checkpointing": False,
        "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0,
        "limit_val_batches": 1,
    }  # fmt: skip
    return lightning.Trainer(**{**options, **kwargs})


@pytest.mark.parametrize("backbone", [RESNET, PRITHVI], ids=["resnet18", "prithvi_tiny"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_framework_trains_validates_and_predicts(
    chips: Path, framework: str, backbone: dict[str, Any]
) -> None:
    masks = framework == "mask-rcnn"
    task = ObjectDetectionTask(
        model_args={**backbone, "framework": framework, "num_classes": 2, "anchor_sizes": [8, 16, 32, 64, 128]},
        class_names=["a", "b"], score_threshold=0.0,
    )  # fmt: skip
    before = {n: p.detach().clone() for n, p in task.named_parameters()}
    run = trainer()
    run.fit(task, datamodule(chips, masks))
    changed = [n for n, p in task.named_parameters() if not torch.equal(before[n], p)]
    assert any("encoder" in n for n in changed) and any("neck" in n for n in changed)
    metrics = run.callback_metrics
    assert torch.isfinite(metrics["train/loss"])
    names = {"val/mAP", "val/mAP_50", "val/mAP_75", "val/mAR_100"} | (
        {"val/mask_mAP", "val/mask_mAP_50", "val/mask_mAP_75"} if masks else set()
    )
    assert names <= set(metrics)
    assert all(-1.0 <= float(metrics[n]) <= 1.0 for n in names)
    out = run.predict(task, datamodule(chips, masks))
    first = out[0]
    assert len(first["boxes"]) == 2 and first["filename"][0].endswith("chip_000.tif")
    for boxes, labels, scores in zip(first["boxes"], first["labels"], first["scores"], strict=True):
        assert boxes.ndim == 2 and boxes.shape[1] == 4 and labels.shape == scores.shape == boxes.shape[:1]
        assert bool(((labels >= 0) & (labels < 2)).all())
        assert bool((boxes[:, 2:] >= boxes[:, :2]).all()) and (boxes.numel() == 0 or float(boxes.max()) <= 32)
    if masks:
        assert all(m.shape[1:] == (32, 32) and m.dtype == torch.bool for m in first["masks"])


def test_per_class_ap_and_a_checkpoint_that_reloads(chips: Path, tmp_path: Path) -> None:
    task = ObjectDetectionTask(
        model_args={**RESNET, "framework": "faster-rcnn", "num_classes": 2}, class_names=["a", "b"],
        freeze_backbone=True,
    )  # fmt: skip
    assert not any(p.requires_grad for p in task.model.torchvision_model.backbone.encoder.parameters())
    run = trainer(max_steps=1)
    dm = datamodule(chips)
    run.fit(task, dm)
    dm.setup("test")
    # ground truth as predictions: every metric is 1, per class too
    metric = task.test_metrics
    for batch in dm.test_dataloader():
        targets = task.targets(batch)
        metric.update([{**t, "scores": torch.ones(len(t["labels"]))} for t in targets], targets)
    values = task.metric_values(metric, "test")
    assert float(values["test/mAP"]) == pytest.approx(1.0) and float(values["test/mAP_50"]) == pytest.approx(
        1.0
    )
    assert {"test/AP/a", "test/AP/b"} <= set(values) and float(values["test/AP/b"]) == pytest.approx(1.0)
    path = tmp_path / "det.ckpt"
    run.save_checkpoint(path)
    loaded = ObjectDetectionTask.load_from_checkpoint(path)
    task.eval(), loaded.eval()
    x = torch.rand(1, 3, 32, 32)
    a, b = task(x)[0], loaded(x)[0]
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def test_bad_configurations_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="unknown framework 'yolo'"):
        ObjectDetectionTask(model_args={**RESNET, "framework": "yolo", "num_classes": 1})
    with pytest.raises(ConfigError, match="class_names has 2 names but model_args.num_classes is 1"):
        ObjectDetectionTask(
            model_args={**RESNET, "framework": "fcos", "num_classes": 1}, class_names=["a", "b"]
        )
    with pytest.raises(ConfigError, match="framework_box_score_treshold"):
        ObjectDetectionTask(
            model_args={
                **RESNET,
                "framework": "faster-rcnn",
                "num_classes": 1,
                "framework_box_score_treshold": 0.1,
            }
        )
    with pytest.raises(ConfigError, match="same channels"):
        ObjectDetectionTask(model_args={**RESNET, "framework": "retinanet", "num_classes": 1, "necks": []})


def test_min_size_resizes_like_torchvision_and_its_absence_keeps_chips_native() -> None:
    native = ObjectDetectionTask(model_args={**RESNET, "framework": "faster-rcnn", "num_classes": 1})
    resized = ObjectDetectionTask(
        model_args={**RESNET, "framework": "faster-rcnn", "num_classes": 1, "framework_min_size": 64,
                    "framework_max_size": 64}
    )  # fmt: skip
    x = [torch.rand(3, 32, 32)]
    native.eval(), resized.eval()
    assert native.model.torchvision_model.transform(x)[0].tensors.shape[-2:] == (32, 32)
    assert resized.model.torchvision_model.transform(x)[0].tensors.shape[-2:] == (64, 64)
    assert list(native.model.torchvision_model.transform.image_mean) == [0.0] * 3
