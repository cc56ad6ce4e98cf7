"""Detection and scalar-regression datasets read as the Data page does, the configs the Model page builds
for them (round-tripped through YAML), and those configs trained by a real ``geoft fit``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from geoft.app.detection_data import detection_datamodule_paths, ensure_detection_demo, summarize_detection
from geoft.app.forms import (
    DETECTION_PRESETS,
    SCALAR_PRESETS,
    DataChoice,
    ModelChoice,
    TrainChoice,
    build_config,
    config_from_yaml,
    config_to_yaml,
    task_kind_of,
)
from geoft.app.scalar_data import scalar_datamodule_paths, summarize_scalar
from geoft.cli import main
from geoft.errors import ConfigError, DataError
from geoft.task_kinds import TaskKind

BANDS = ["BLUE", "GREEN", "RED"]
HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


@pytest.fixture(scope="module")
def detection_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_detection_demo(tmp_path_factory.mktemp("det") / "demo-detection", chips=6, size=32)


def make_scalar_dataset(root: Path) -> Path:
    from geoft.datasets.demo import generate_demo_dataset, write_class_fraction_labels

    generate_demo_dataset(root, n_train=4, n_val=2, n_test=2, size=32)
    write_class_fraction_labels(root)
    return root


@pytest.fixture(scope="module")
def scalar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scalar_dataset(tmp_path_factory.mktemp("scalar") / "demo")


def test_detection_summary_finds_every_format_with_classes_and_counts(detection_root: Path):
    truth_objects = sum(
        len(json.loads(p.read_text())["features"]) for p in detection_root.glob("*/labels/*.geojson")
    )
    by_format = {}
    for fmt in ("vector", "coco", "yolo"):
        summary = summarize_detection(detection_root, fmt)
        assert summary.formats_found == ["vector", "coco", "yolo"] and summary.label_format == fmt
        assert summary.problems == [], summary.problems
        assert summary.split_sizes == {"train": 6, "val": 4}
        assert summary.object_count == truth_objects
        assert summary.size == (32, 32) and summary.crs == "EPSG:32632"
        by_format[fmt] = summary
    assert by_format["vector"].class_field == "class"
    assert by_format["vector"].class_names == ["class 0", "class 1"]  # integer classes
    assert by_format["coco"].class_names == ["class0", "class1"]  # COCO's category names
    assert by_format["yolo"].class_counts == by_format["vector"].class_counts
    paths = detection_datamodule_paths(by_format["coco"])
    assert paths["train_label_data_root"].endswith("train/coco.json") and paths["label_format"] == "coco"
    assert detection_datamodule_paths(by_format["yolo"])["label_grep"] == "*.txt"


def test_gallery_draws_each_box_in_its_class_colour(detection_root: Path):
    from geoft.app.detection_data import boxes_preview

    summary = summarize_detection(detection_root)
    image, objects = next((i, o) for s in summary.splits for i, o in s.examples if o)
    colors = [(255, 0, 0), (0, 255, 0)]
    picture = boxes_preview(image, objects, [2, 1, 0], colors)
    assert picture.shape == (32, 32, 3) and picture.dtype.name == "uint8"
    for obj in objects:
        x0, y0 = int(obj.box[0]), int(obj.box[1])
        assert tuple(picture[y0, x0]) == colors[obj.label]  # the box's corner
    assert [len(s.examples) for s in summary.splits] == [6, 4]  # up to 8 per split


def test_detection_summary_names_the_bad_files(detection_root: Path, tmp_path: Path):
    import shutil

    root = tmp_path / "det"
    shutil.copytree(detection_root, root)
    (root / "train" / "labels" / "chip_001.geojson").unlink()
    (root / "train" / "labels" / "chip_002.geojson").write_text("{not json")
    summary = summarize_detection(root)
    problems = "\n".join(summary.problems)
    assert "No label for image" in problems and "chip_001.tif" in problems
    assert "chip_002.geojson" in problems
    assert summary.split_sizes["train"] == 4  # the two bad chips are left out, as training would refuse them


def test_detection_summary_without_annotations_says_where_to_put_them(tmp_path: Path, detection_root: Path):
    import shutil

    root = tmp_path / "bare"
    shutil.copytree(detection_root / "train" / "images", root / "images")
    summary = summarize_detection(root)
    assert summary.label_format is None and "no annotations found" in summary.problems[0]
    with pytest.raises(DataError):
        detection_datamodule_paths(summary)


def test_scalar_summary_range_missing_and_unknown_rows(scalar_root: Path, tmp_path: Path):
    summary = summarize_scalar(scalar_root)
    assert summary.labels_file_name == "vegetation_fraction.csv" and summary.value_names == ["fraction"]
    assert summary.split_sizes == {"test": 2, "train": 4, "val": 2} and summary.problems == []
    low, high = summary.value_range
    assert 0.0 <= low <= high <= 1.0
    import shutil

    root = tmp_path / "scalar"
    shutil.copytree(scalar_root, root)
    csv = root / "val" / "vegetation_fraction.csv"
    rows = csv.read_text().splitlines()
    csv.write_text("\n".join([rows[0], rows[1], "ghost.tif,0.5"]) + "\n")  # the 2nd val image is dropped
    broken = summarize_scalar(root)
    assert broken.split_sizes["val"] == 1
    assert any("val_0001" in p and "not listed" in p for p in broken.problems), broken.problems
    assert any("ghost" in w for w in broken.warnings)
    assert scalar_datamodule_paths(summary)["val_labels_file"].endswith("val/vegetation_fraction.csv")


def detection_data(root: Path) -> DataChoice:
    summary = summarize_detection(root)
    return DataChoice(str(root), detection_datamodule_paths(summary), summary.class_names, BANDS)


def scalar_data(root: Path) -> DataChoice:
    summary = summarize_scalar(root)
    return DataChoice(str(root), scalar_datamodule_paths(summary), [], HLS)


@pytest.mark.parametrize("preset", list(DETECTION_PRESETS))
def test_detection_presets_build_the_config_fit_reads(detection_root: Path, preset: str):
    config = build_config(detection_data(detection_root), DETECTION_PRESETS[preset], TrainChoice())
    assert config["model"]["class_path"] == "geoft.tasks.ObjectDetectionTask"
    assert config["data"]["class_path"] == "geoft.datamodules.GenericObjectDetectionDataModule"
    args = config["model"]["init_args"]["model_args"]
    assert args["framework"] == "faster-rcnn" and args["num_classes"] == 2
    assert config["data"]["init_args"]["class_field"] == "class"
    assert (
        config_from_yaml(config_to_yaml(config)) == config
        and task_kind_of(config) == TaskKind.OBJECT_DETECTION
    )


def test_detection_form_refuses_what_the_detector_cannot_do(detection_root: Path):
    data = detection_data(detection_root)
    preset = DETECTION_PRESETS["Faster R-CNN + ResNet18 (timm)"]
    with pytest.raises(ConfigError, match="LoRA"):
        build_config(data, ModelChoice(**{**preset.__dict__, "lora_rank": 4}), TrainChoice())
    with pytest.raises(ConfigError, match="at least one object class"):
        build_config(DataChoice("x", {}, [], BANDS), preset, TrainChoice())
    retina = build_config(data, ModelChoice(**{**preset.__dict__, "framework": "retinanet"}), TrainChoice())
    assert not any(k.startswith("framework_") for k in retina["model"]["init_args"]["model_args"])


@pytest.mark.parametrize("preset", list(SCALAR_PRESETS))
def test_scalar_presets_build_the_config_fit_reads(scalar_root: Path, preset: str):
    config = build_config(scalar_data(scalar_root), SCALAR_PRESETS[preset], TrainChoice())
    init = config["model"]["init_args"]
    assert config["model"]["class_path"] == "geoft.tasks.ScalarRegressionTask"
    assert init["num_outputs"] == 1 and init["loss"] == "mse" and "class_names" not in init
    assert "num_classes" not in init["model_args"] and init["model_args"]["decoder"] == "IdentityDecoder"
    assert config["data"]["init_args"]["train_labels_file"].endswith("vegetation_fraction.csv")
    assert (
        config_from_yaml(config_to_yaml(config)) == config
        and task_kind_of(config) == TaskKind.SCALAR_REGRESSION
    )


def test_several_values_per_image_name_each_output(scalar_root: Path):
    data = scalar_data(scalar_root)
    data.value_names = ["biomass", "height"]
    config = build_config(data, SCALAR_PRESETS["Prithvi tiny + regression head"], TrainChoice())
    assert config["model"]["init_args"]["var_names"] == ["biomass", "height"]
    assert config["data"]["init_args"]["num_outputs"] == 2 == config["model"]["init_args"]["num_outputs"]


def fit_two_steps(config: dict, workspace: Path) -> dict[str, float]:
    """``geoft fit`` on the app's config, as the Train page's job runs it; the metrics it logged."""
    config["trainer"].update(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        precision="32-true",
        enable_model_summary=False,
    )
    config["data"]["init_args"]["batch_size"] = 2
    (workspace / "config.yaml").write_text(config_to_yaml(config))
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        assert main(["fit", "-c", "config.yaml", "--run_name", "app"]) == 0
    finally:
        os.chdir(cwd)
    run = workspace / "runs" / "app"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    names: dict[str, float] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        names.update(record.get("metrics") or {})
    return names


def test_detection_config_trains_with_geoft_fit(detection_root: Path, tmp_path: Path):
    config = build_config(
        detection_data(detection_root), DETECTION_PRESETS["Faster R-CNN + ResNet18 (timm)"], TrainChoice()
    )
    metrics = fit_two_steps(config, tmp_path)
    assert {"val/mAP", "val/mAP_50", "val/mAP_75"} <= set(metrics), sorted(metrics)


def test_scalar_config_trains_with_geoft_fit_and_the_runs_page_shows_its_scores(
    scalar_root: Path, tmp_path: Path, home: Path
):
    from streamlit.testing.v1 import AppTest

    from geoft.app.progress import best_metrics
    from geoft.app.run_store import COMPLETED, RunStore

    config = build_config(
        scalar_data(scalar_root), SCALAR_PRESETS["Prithvi tiny + regression head"], TrainChoice()
    )
    metrics = fit_two_steps(config, tmp_path)
    assert {"val/RMSE", "val/MAE", "val/R2_Score"} <= set(metrics), sorted(metrics)
    run_dir = tmp_path / "runs" / "app"
    store = RunStore(home / "runs" / "runs.sqlite")
    store.add("s1", "biomass", run_dir, "cpu", status=COMPLETED)
    store.update("s1", best_metrics=best_metrics(run_dir / "metrics.jsonl"))
    runs = AppTest.from_file(
        str(Path(__file__).parents[2] / "pages" / "4_Runs.py"), default_timeout=120
    ).run()
    assert not runs.exception, runs.exception
    table = next(d.value for d in runs.dataframe if "name" in d.value.columns)
    assert list(table.columns[2:6]) == ["val/RMSE best", "val/RMSE last", "val/MAE best", "val/MAE last"]
    captions = "\n".join(c.value for c in runs.caption)
    assert "no classes" in captions and "confusion matrix" not in captions
