"""Quality: Faster R-CNN learns generated objects (mAP@50 >= 0.8), and its vectors land on the objects,
per chip and across the tiles of a larger scene (checked against the generator's truth)."""

from __future__ import annotations

from pathlib import Path

import lightning
import numpy as np
import pyogrio
import pytest

from geoft.datamodules.detection import GenericObjectDetectionDataModule
from geoft.datasets.detection_demo import generate_detection_chips
from geoft.io.detection_scene import predict_scene_detections
from geoft.tasks import ObjectDetectionTask
from geoft.vector_writer import VectorPredictionWriter

OBJECTS = {"object_size": (8, 16), "max_objects": 2}


def _map_box(transform: tuple[float, ...], box: tuple[int, ...]) -> np.ndarray:
    a, _, c, _, e, f = transform
    x0, y0, x1, y1 = box
    return np.array([c + a * x0, f + e * y1, c + a * x1, f + e * y0])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _inside(found: np.ndarray, true: np.ndarray) -> bool:
    """The centre of a found box lies within a true object."""
    cx, cy = (found[0] + found[2]) / 2, (found[1] + found[3]) / 2
    return bool(true[0] <= cx <= true[2] and true[1] <= cy <= true[3])


def _matches(found: np.ndarray, truth: list[np.ndarray]) -> list[int]:
    """For each true object, how many detections overlap it with IoU >= 0.5."""
    return [sum(_iou(f, t) >= 0.5 for f in found) for t in truth]


@pytest.mark.slow
def test_faster_rcnn_reaches_map50_and_its_vectors_land_on_the_objects(tmp_path: Path) -> None:
    lightning.seed_everything(0)
    generate_detection_chips(tmp_path / "train", n=32, size=48, seed=1, **OBJECTS)
    val = generate_detection_chips(tmp_path / "val", n=16, size=48, seed=2, **OBJECTS)
    dm = GenericObjectDetectionDataModule(
        num_classes=1, batch_size=4, means=[0.4] * 3, stds=[0.3] * 3, train_transform=["hflip", "vflip"],
        train_data_root=tmp_path / "train" / "images", train_label_data_root=tmp_path / "train" / "labels",
        val_data_root=tmp_path / "val" / "images", val_label_data_root=tmp_path / "val" / "labels",
        predict_data_root=tmp_path / "val" / "images",
    )  # fmt: skip
    task = ObjectDetectionTask(
        model_args={
            "backbone": "timm_resnet18", "backbone_pretrained": False, "backbone_out_indices": [1, 2, 3],
            "framework": "faster-rcnn", "num_classes": 1, "anchor_sizes": [16, 32, 64],
            "necks": [{"name": "FeaturePyramidNetworkNeck", "out_channel": 64}],
            "framework_rpn_batch_size_per_image": 64, "framework_box_batch_size_per_image": 64,
        },
        lr=1e-3, optimizer="AdamW", class_names=["object"],
        iou_threshold=0.3,  # objects never overlap here: suppress the weak duplicates of a short training
    )  # fmt: skip
    options = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
    }
    trainer = lightning.Trainer(max_steps=40, limit_val_batches=0, enable_model_summary=False, **options)
    trainer.fit(task, dm)
    metrics = lightning.Trainer(enable_model_summary=False, **options).validate(task, dm, verbose=False)[0]
    assert metrics["val/mAP_50"] >= 0.8, metrics

    # per chip: the written vector files (map coordinates) overlap the true objects
    writer = VectorPredictionWriter(tmp_path / "pred", formats=["gpkg"])
    lightning.Trainer(callbacks=[writer], **options).predict(task, dm, return_predictions=False)
    hits = total = on_objects = detections = 0
    for chip in val:
        frame = pyogrio.read_dataframe(tmp_path / "pred" / f"{chip.image.stem}_detections.gpkg")
        found = np.array([g.bounds for g in frame.geometry]).reshape(-1, 4)
        truth = [_map_box(chip.transform, b) for b in chip.boxes]
        hits += sum(m >= 1 for m in _matches(found, truth))
        total += len(truth)
        on_objects += sum(any(_inside(f, t) for t in truth) for f in found)
        detections += len(found)
    # found (IoU >= 0.5 in map coordinates), and what is predicted lies on an object, not on background
    assert hits / total >= 0.8 and on_objects / max(detections, 1) >= 0.9, (
        hits,
        total,
        on_objects,
        detections,
    )

    # a larger scene in 9 overlapping tiles: objects on tile borders are not found once per tile. The same
    # model on the scene in one tile is the reference, so duplicates the model makes anyway do not count.
    scene = generate_detection_chips(
        tmp_path / "scene", n=1, size=144, seed=7, object_size=(8, 16), max_objects=14
    )[0]
    truth = [_map_box(scene.transform, b) for b in scene.boxes]
    counts = {}
    for tile_size, tiles in ((64, 9), (144, 1)):
        result = predict_scene_detections(
            task, scene.image, tmp_path / f"scene{tile_size}.geojson", means=[0.4] * 3, stds=[0.3] * 3,
            tile_size=tile_size, overlap=24,
        )  # fmt: skip
        assert result.tiles == tiles
        frame = pyogrio.read_dataframe(result.paths[0])
        counts[tiles] = _matches(np.array([g.bounds for g in frame.geometry]).reshape(-1, 4), truth)
    edges = (40, 64, 80, 104)  # inner tile borders (tiles start at 0, 40, 80 and are 64 wide)
    crossing = [
        i for i, (x0, y0, x1, y1) in enumerate(scene.boxes) if any(x0 < e < x1 or y0 < e < y1 for e in edges)
    ]
    assert crossing, "the generated scene should have objects on tile borders"
    assert sum(m >= 1 for m in counts[9]) >= 0.8 * len(truth), counts
    assert all(counts[9][i] <= max(1, counts[1][i]) for i in crossing), counts
