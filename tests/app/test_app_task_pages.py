"""AppTest (no browser): the Data, Model, Train and Runs pages with an object-detection and a
scalar-regression dataset, from the Data page's choice of labels to a finished run's scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from geoft.app.jobs import JobRunner
from geoft.app.run_store import COMPLETED, RunStore
from geoft.task_kinds import TaskKind
from tests.app.test_app_pages import make_dataset, run_page

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def page(name: str, session: dict | None = None) -> AppTest:
    return run_page(name, session, timeout=180)


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind)).replace("\\_", "_")  # markdown-escaped


def labels_radio(at: AppTest):
    return next(r for r in at.radio if r.label == "What are the labels?")


def built_config(at: AppTest) -> dict:
    return yaml.safe_load(at.code[-1].value)


def use_folder(at: AppTest, name: str) -> AppTest:
    at.text_input(key="data_typed").input(name)
    return at.button(key="data_use").click().run()


def test_detection_demo_from_the_data_page_to_a_finished_run(home: Path):
    at = page("pages/1_Data.py")
    at.radio(key="data_source").set_value("Demo dataset").run()
    at.radio(key="data_demo_kind").set_value("Object detection").run()
    at.button(key="data_demo").click().run()
    assert not at.exception, at.exception
    assert labels_radio(at).value.value == "object_detection"  # the demo says what its labels are
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "30" and int(metrics["Objects"]) > 0 and metrics["Size"] == "64×64"
    assert not at.error, texts(at, "error")
    (classes,) = [d.value for d in at.dataframe if "objects" in d.value.columns]
    assert classes["class"].tolist() == ["class 0", "class 1"] and classes["objects"].sum() == int(
        metrics["Objects"]
    )
    assert len(at.get("image")) == 8  # the gallery: chips with their boxes
    at.selectbox(key="data_label_format").set_value("coco").run()
    assert "EPSG:32632" in texts(at, "markdown")
    dataset = at.session_state["geoft_dataset"]

    model = page("pages/2_Model.py", {"geoft_dataset": dataset})
    assert not model.exception, model.exception
    assert "**Task:** Object annotations" in texts(model, "markdown")
    assert model.selectbox(key="model_preset_object_detection").value == "Faster R-CNN + ResNet18 (timm)"
    model.radio(key="model_weights").set_value("None: random weights").run()
    config = built_config(model)
    assert config["model"]["class_path"] == "geoft.tasks.ObjectDetectionTask"
    assert config["data"]["init_args"]["label_format"] == "coco"  # the Data page's choice
    assert config["data"]["init_args"]["train_label_data_root"].endswith("train/coco.json")
    assert config["model"]["init_args"]["class_names"] == ["class 0", "class 1"]  # the saved names win
    model.button(key="model_check").click().run()
    assert not model.exception and "boxes in the first image" in texts(model, "success"), texts(
        model, "error"
    )
    model.button(key="model_use").click().run()  # checked, kept for training (then the Train page opens)
    chosen = model.session_state["geoft_config"]
    assert chosen == config

    train = page("pages/3_Train.py", {"geoft_config": chosen, "geoft_config_dataset": dataset})
    train.number_input[0].set_value(1)  # one epoch
    train.text_input[0].input("det-run")
    next(b for b in train.button if b.label == "Start training").click().run()
    assert not train.exception and not train.error, texts(train, "error")
    store = RunStore(home / "runs" / "runs.sqlite")
    (run,) = store.list()
    done = JobRunner(store, home / "runs").wait(run.id, timeout_s=400)
    assert done.status == COMPLETED, done.error
    assert {"val/mAP", "val/mAP_50", "val/mAP_75"} <= set(done.best_metrics)

    runs = page("pages/4_Runs.py")
    assert not runs.exception, runs.exception
    table = next(d.value for d in runs.dataframe if "name" in d.value.columns)
    assert list(table.columns[2:5]) == ["val/mAP best", "val/mAP last", "val/mAP_50 best"]
    assert not any("IoU" in c for d in runs.dataframe for c in d.value.columns)
    assert "confusion matrix" not in texts(runs, "caption")


def test_detection_problems_are_listed_with_their_files(home: Path):
    from geoft.app.detection_data import ensure_detection_demo

    root = ensure_detection_demo(home / "data" / "ships", chips=6, size=32)
    (root / "train" / "labels" / "chip_003.geojson").write_text("{broken")
    at = page("pages/1_Data.py")
    use_folder(at, "ships")
    labels_radio(at).set_value(TaskKind.OBJECT_DETECTION).run()
    assert not at.exception, at.exception
    assert "train: train/labels/chip_003.geojson" in texts(at, "error")  # named inside the dataset
    assert {m.label: m.value for m in at.metric}["Images"] == "9"  # 10 chips, the broken one left out


def make_scalar(root: Path) -> Path:
    from geoft.datasets.demo import generate_demo_dataset, write_class_fraction_labels

    generate_demo_dataset(root, n_train=4, n_val=2, n_test=2, size=32)
    write_class_fraction_labels(root)
    return root


def test_scalar_dataset_on_the_data_and_model_pages(home: Path):
    root = make_scalar(home / "data" / "biomass")
    (root / "train" / "images" / "train_0003.tif").unlink()  # a labels-file row without its image
    at = page("pages/1_Data.py")
    use_folder(at, "biomass")
    labels_radio(at).set_value(TaskKind.SCALAR_REGRESSION).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images with a value"] == "7"
    assert 0 <= float(metrics["Minimum"]) <= float(metrics["Maximum"]) <= 1
    assert "train_0003" in texts(at, "warning")
    dataset = at.session_state["geoft_dataset"]

    model = page("pages/2_Model.py", {"geoft_dataset": dataset})
    assert not model.exception, model.exception
    assert "**Task:** One value per image" in texts(model, "markdown")
    assert model.selectbox(key="model_loss_scalar_regression").options == ["mse", "mae", "rmse", "huber"]
    model.selectbox(key="model_preset_scalar_regression").set_value("ResNet18 (timm) + regression head").run()
    model.radio(key="model_weights").set_value("None: random weights").run()
    config = built_config(model)
    assert config["model"]["class_path"] == "geoft.tasks.ScalarRegressionTask"
    assert config["model"]["init_args"]["model_args"]["backbone"] == "timm_resnet18"
    assert config["data"]["init_args"]["train_labels_file"].endswith("train/vegetation_fraction.csv")
    model.button(key="model_check").click().run()
    assert not model.exception and "output [2, 1]" in texts(model, "success"), texts(model, "error")


def test_model_page_without_a_dataset_builds_any_task(home: Path):
    model = page("pages/2_Model.py")
    model.selectbox(key="model_task").set_value(TaskKind.OBJECT_DETECTION).run()
    assert not model.exception, model.exception
    assert model.selectbox(key="model_framework").options == ["faster-rcnn", "retinanet", "fcos"]
    assert "ObjectDetectionTask" in model.code[-1].value
    model.text_input(key="model_classes_detection").input("").run()
    assert "at least one object class" in texts(model, "error")


def test_a_segmentation_dataset_stays_segmentation(home: Path):
    make_dataset(home / "data" / "fields")
    at = page("pages/1_Data.py")
    use_folder(at, "fields")
    assert labels_radio(at).value.value == "segmentation" and not at.exception
    assert {m.label: m.value for m in at.metric}["Chips"] == "6"
