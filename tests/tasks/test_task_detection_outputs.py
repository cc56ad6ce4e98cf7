"""Detection outputs: vector files in the image's CRS (OGR reads them), geoft fit/predict/export end to end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import torch
import yaml
from rasterio.crs import CRS as RasterCRS

from geoft.cli import main
from geoft.datasets.detection import GenericObjectDetectionDataset
from geoft.datasets.detection_demo import CRS, generate_detection_chips
from geoft.export import ExportError, export_model
from geoft.tasks import ObjectDetectionTask
from geoft.vector_writer import detections_frame, write_vectors

REPO = Path(__file__).resolve().parents[2]


def _map_box(transform: tuple[float, ...], box: tuple[int, ...]) -> list[float]:
    a, _, c, _, e, f = transform
    x0, y0, x1, y1 = box
    return [c + a * x0, f + e * y1, c + a * x1, f + e * y0]  # minx, miny, maxx, maxy (north-up)


@pytest.mark.parametrize("masks", [False, True], ids=["boxes", "mask_polygons"])
def test_ground_truth_written_as_vectors_lands_on_the_generators_objects(tmp_path: Path, masks: bool) -> None:
    truth = generate_detection_chips(tmp_path, n=3, size=40, num_classes=2, seed=4)
    dataset = GenericObjectDetectionDataset(
        tmp_path / "images", 2, label_data_root=tmp_path / "labels", class_field="class", return_masks=masks
    )
    for i, chip in enumerate(truth):
        sample = dataset[i]
        frame = detections_frame(
            sample["boxes"], sample["labels"], torch.ones(len(sample["labels"])), sample["crs"],
            sample["transform"], ["small", "large"], sample["masks"].bool() if masks else None,
        )  # fmt: skip
        written = write_vectors(frame, tmp_path / "out" / chip.image.stem, ["geojson", "gpkg"])
        for path in written:
            info = pyogrio.read_info(path)
            assert RasterCRS.from_user_input(info["crs"]) == RasterCRS.from_user_input(CRS), path
            back = pyogrio.read_dataframe(path)
            assert back["class"].tolist() == chip.labels
            assert back["class_name"].tolist() == [["small", "large"][k] for k in chip.labels]
            for geometry, box in zip(back.geometry, chip.boxes, strict=True):
                np.testing.assert_allclose(geometry.bounds, _map_box(chip.transform, box), atol=1e-6)
                assert geometry.area == pytest.approx((box[2] - box[0]) * (box[3] - box[1]) * 100.0)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    generate_detection_chips(
        tmp_path / "data" / "det" / "train", n=4, size=32, max_objects=2, object_size=(6, 12), seed=1
    )
    generate_detection_chips(
        tmp_path / "data" / "det" / "val", n=2, size=32, max_objects=2, object_size=(6, 12), seed=2
    )
    config = yaml.safe_load((REPO / "configs" / "detection_faster_rcnn.yaml").read_text())
    config["trainer"].update(
        max_epochs=1, accelerator="cpu", enable_progress_bar=False, enable_model_summary=False
    )
    config["data"]["init_args"]["batch_size"] = 2
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_example_config_fits_predicts_vectors_and_exports_onnx(workspace: Path, capsys: Any) -> None:
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        assert main(["fit", "-c", "config.yaml", "--run_name", "det"]) == 0
        checkpoints = workspace / "runs" / "det" / "checkpoints"
        assert (checkpoints / "last.ckpt").is_file() and list(checkpoints.glob("best-*.ckpt"))  # by val/mAP
        ckpt = str(checkpoints / "last.ckpt")
        args = ["--ckpt_path", ckpt, "--data.init_args.predict_data_root", "data/det/val/images"]
        assert main(["predict", "-c", "config.yaml", *args, "--predict_output_dir", "preds"]) == 0
        for stem in ("chip_000", "chip_001"):
            for suffix in (".geojson", ".gpkg"):
                path = workspace / "preds" / f"{stem}_detections{suffix}"
                info = pyogrio.read_info(path)
                assert RasterCRS.from_user_input(info["crs"]) == RasterCRS.from_user_input(CRS)
                if suffix == ".gpkg":  # GeoJSON has no schema: an empty file lists no fields
                    assert {"class", "class_name", "score"} <= set(info["fields"])
        scene = ["--input", "data/det/val/images/chip_000.tif", "--output", "scene.gpkg", "--tile_size", "24"]
        assert (
            main(["predict-scene", "-c", "config.yaml", "--ckpt_path", ckpt, *scene, "--overlap", "8"]) == 0
        )
        info = pyogrio.read_info(workspace / "scene.gpkg")
        assert RasterCRS.from_user_input(info["crs"]) == RasterCRS.from_user_input(CRS)
        capsys.readouterr()
        assert (
            main(
                [
                    "export",
                    "-c",
                    "config.yaml",
                    "--ckpt_path",
                    ckpt,
                    "-o",
                    "det.onnx",
                    "--input_shape",
                    "1,3,32,32",
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "wrote det.onnx" in out and "verified against PyTorch on 2 inputs" in out
    finally:
        os.chdir(cwd)


def test_other_export_formats_say_why_not(tmp_path: Path) -> None:
    task = ObjectDetectionTask(
        model_args={
            "backbone": "timm_resnet18",
            "backbone_pretrained": False,
            "framework": "fcos",
            "num_classes": 1,
        }
    )
    with pytest.raises(ExportError, match="data-dependent number of boxes"):
        export_model(task, tmp_path / "m.pt2", torch.rand(1, 3, 32, 32), format="pt2")


def test_scene_detection_tiles_the_scene_and_writes_one_vector_file(tmp_path: Path) -> None:
    from geoft.io.detection_scene import predict_scene_detections

    truth = generate_detection_chips(tmp_path, n=1, size=80, seed=6)
    task = ObjectDetectionTask(
        model_args={
            "backbone": "timm_resnet18",
            "backbone_pretrained": False,
            "framework": "fcos",
            "num_classes": 1,
        },
        score_threshold=0.0,
    )
    seen: list[tuple[int, int]] = []
    found = predict_scene_detections(
        task, truth[0].image, tmp_path / "scene.gpkg", means=[0.4] * 3, stds=[0.3] * 3, tile_size=48, overlap=16,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert found.tiles == 4 and seen[-1] == (4, 4) and (found.height, found.width) == (80, 80)
    info = pyogrio.read_info(tmp_path / "scene.gpkg")
    assert RasterCRS.from_user_input(info["crs"]) == RasterCRS.from_user_input(CRS)
    assert info["features"] == found.detections
    frame = pyogrio.read_dataframe(tmp_path / "scene.gpkg")
    if len(frame):  # every box lies within the scene's footprint
        west, north = truth[0].transform[2], truth[0].transform[5]
        minx, miny, maxx, maxy = frame.total_bounds
        assert (
            west - 1e-6 <= minx
            and maxx <= west + 800 + 1e-6
            and north - 800 - 1e-6 <= miny
            and maxy <= north + 1e-6
        )


def test_boxes_cut_by_inner_tile_borders_are_recognised() -> None:
    from geoft.io.detection_scene import _cut

    boxes = torch.tensor([[0.0, 10, 8, 20], [10, 10, 20, 20], [30, 0, 40, 5], [35, 35, 40, 40]])
    # a tile at (row 0, col 40) of 40x40 inside an 80x80 scene: left and bottom borders are inner
    assert _cut(boxes, 0, 40, 40, 40, 80, 80).tolist() == [True, False, False, True]
    # the same boxes on the scene's top-left tile of a 40x40 scene: no inner border
    assert _cut(boxes, 0, 0, 40, 40, 40, 40).tolist() == [False, False, False, False]
