"""Classification in the app: the Data page's classes and counts (class sub-folders or a labels file),
the presets' configs and a real ``geoft fit`` of one, and the Data → Model path in AppTest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geoft.app.classification_data import classification_datamodule_paths, summarize_classification
from geoft.app.forms import (
    CLASSIFICATION_PRESETS,
    MULTILABEL_PRESETS,
    DataChoice,
    TrainChoice,
    build_config,
    config_from_yaml,
    config_to_yaml,
    task_kind_of,
)
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind
from tests.app.test_app_task_forms import fit_two_steps

HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
CLASSES = ("forest", "water")


def write_chip(path: Path, level: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).uniform(0, 1, (6, 32, 32)).astype("float32") + level
    profile = dict(driver="GTiff", width=32, height=32, count=6, dtype="float32", crs="EPSG:32633")
    with rasterio.open(path, "w", transform=from_origin(400000, 5000000, 30, 30), **profile) as dst:
        dst.write(data)


def make_class_folders(root: Path) -> Path:
    """train/<class>/ and val/<class>/, 3 + 1 chips per class in train and 1 per class in val."""
    for split, count in (("train", 3), ("val", 1)):
        for c, name in enumerate(CLASSES):
            for i in range(count + (1 if split == "train" and c == 0 else 0)):
                write_chip(root / split / name / f"{name}_{i}.tif", c, seed=hash((split, c, i)) % 1000)
    return root


@pytest.fixture(scope="module")
def folders_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_class_folders(tmp_path_factory.mktemp("cls") / "scenes")


def test_class_folders_give_classes_and_images_per_class(folders_root: Path):
    summary = summarize_classification(folders_root)
    assert not summary.problems, summary.problems
    assert summary.class_names == ["forest", "water"] and summary.size == (32, 32)
    assert summary.class_counts == {"forest": 5, "water": 4} and summary.split_sizes == {"train": 7, "val": 2}
    paths = classification_datamodule_paths(summary)
    assert paths["train_data_root"].endswith("train") and "train_labels_file" not in paths


def test_a_labels_file_names_unknown_classes_and_unlisted_images(tmp_path: Path):
    root = tmp_path / "listed"
    for i in range(4):
        write_chip(root / "train" / "images" / f"c{i}.tif", 0, seed=i)
    (root / "train" / "labels.csv").write_text("filename,label\nc0,forest\nc1,water\nc2,forest\n")
    summary = summarize_classification(root)
    assert summary.labels_file_name == "labels.csv" and summary.class_names == ["forest", "water"]
    assert summary.class_counts == {"forest": 2, "water": 1}
    assert any("c3" in p for p in summary.problems + summary.warnings), summary.problems + summary.warnings
    assert classification_datamodule_paths(summary)["train_labels_file"].endswith("train/labels.csv")


def class_data(root: Path) -> DataChoice:
    summary = summarize_classification(root)
    return DataChoice(str(root), classification_datamodule_paths(summary), summary.class_names, HLS)


@pytest.mark.parametrize("preset", list(CLASSIFICATION_PRESETS))
def test_classification_presets_build_the_config_fit_reads(folders_root: Path, preset: str):
    config = build_config(class_data(folders_root), CLASSIFICATION_PRESETS[preset], TrainChoice())
    init = config["model"]["init_args"]
    assert config["model"]["class_path"] == "geoft.tasks.ClassificationTask"
    assert config["data"]["class_path"] == "geoft.datamodules.GenericNonGeoClassificationDataModule"
    assert init["loss"] == "ce" and init["class_names"] == ["forest", "water"]
    assert init["model_args"]["num_classes"] == 2 == config["data"]["init_args"]["num_classes"]
    assert config_from_yaml(config_to_yaml(config)) == config
    assert task_kind_of(config) == TaskKind.CLASSIFICATION
    with pytest.raises(ConfigError, match="two classes"):
        build_config(DataChoice("x", {}, ["forest"], HLS), CLASSIFICATION_PRESETS[preset], TrainChoice())


def test_classification_config_trains_with_geoft_fit(folders_root: Path, tmp_path: Path):
    preset = CLASSIFICATION_PRESETS["ResNet18 (timm) + linear head"]
    metrics = fit_two_steps(build_config(class_data(folders_root), preset, TrainChoice()), tmp_path)
    assert {"val/Accuracy", "val/F1_Score"} <= set(metrics), sorted(metrics)


def test_class_folders_on_the_data_and_model_pages(home: Path):
    from tests.app.test_app_task_pages import built_config, labels_radio, page, texts, use_folder

    make_class_folders(home / "data" / "scenes")
    at = page("pages/1_Data.py")
    use_folder(at, "scenes")
    labels_radio(at).set_value(TaskKind.CLASSIFICATION).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "9" and metrics["Classes"] == "2" and metrics["Smallest class"] == "4"
    (classes,) = [d.value for d in at.dataframe if "images" in d.value.columns]
    assert classes["class"].tolist() == ["forest", "water"] and classes["images"].tolist() == [5, 4]
    assert not at.error, texts(at, "error")
    dataset = at.session_state["geoft_dataset"]

    model = page("pages/2_Model.py", {"geoft_dataset": dataset})
    assert not model.exception, model.exception
    assert "**Task:** One class per image" in texts(model, "markdown")
    assert model.selectbox(key="model_loss_classification").options == ["ce", "bce", "focal"]
    model.selectbox(key="model_preset_classification").set_value("ResNet18 (timm) + linear head").run()
    model.radio(key="model_weights").set_value("None: random weights").run()
    config = built_config(model)
    assert config["model"]["class_path"] == "geoft.tasks.ClassificationTask"
    assert config["model"]["init_args"]["class_names"] == ["forest", "water"]
    assert config["data"]["init_args"]["train_data_root"].endswith("scenes/train")
    model.button(key="model_check").click().run()
    assert not model.exception and "output [2, 2]" in texts(model, "success"), texts(model, "error")


def make_multilabel(root: Path) -> Path:
    """train/ and val/ image folders with a labels file of one or two classes per image."""
    rows = {
        "train": ["a,forest", "b,forest,water", "c,water", "d,forest,water"],
        "val": ["e,water", "f,forest"],
    }
    for split, lines in rows.items():
        for i, line in enumerate(lines):
            write_chip(root / split / "images" / f"{line.split(',')[0]}.tif", 0, seed=i)
        (root / split / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def test_several_classes_per_image_count_in_each_class_and_train(tmp_path: Path):
    root = make_multilabel(tmp_path / "tags")
    single = summarize_classification(root)
    assert any("multi_label" in p for p in single.problems), single.problems  # two classes, one allowed
    summary = summarize_classification(root, multi_label=True)
    assert not summary.problems, summary.problems
    assert summary.class_counts == {"forest": 4, "water": 4} and summary.image_count == 6
    data = DataChoice(str(root), classification_datamodule_paths(summary), summary.class_names, HLS)
    for preset in MULTILABEL_PRESETS.values():
        config = build_config(data, preset, TrainChoice())
        assert config["model"]["class_path"] == "geoft.tasks.MultiLabelClassificationTask"
        assert (
            config["data"]["init_args"]["multi_label"] is True
            and config["model"]["init_args"]["loss"] == "bce"
        )
        assert config_from_yaml(config_to_yaml(config)) == config
        assert task_kind_of(config) == TaskKind.MULTILABEL_CLASSIFICATION
    config = build_config(data, MULTILABEL_PRESETS["ResNet18 (timm) + linear head"], TrainChoice())
    metrics = fit_two_steps(config, tmp_path)
    assert {"val/Accuracy", "val/F1_Score", "val/AUROC"} <= set(metrics), sorted(metrics)


def test_several_classes_per_image_on_the_data_and_model_pages(home: Path):
    from tests.app.test_app_task_pages import built_config, labels_radio, page, texts, use_folder

    make_multilabel(home / "data" / "tags")
    at = page("pages/1_Data.py")
    use_folder(at, "tags")
    labels_radio(at).set_value(TaskKind.MULTILABEL_CLASSIFICATION).run()
    assert not at.exception, at.exception
    (classes,) = [d.value for d in at.dataframe if "images" in d.value.columns]
    assert classes["images"].tolist() == [4, 4] and not at.error, texts(at, "error")
    model = page("pages/2_Model.py", {"geoft_dataset": at.session_state["geoft_dataset"]})
    assert not model.exception, model.exception
    assert model.selectbox(key="model_loss_multilabel_classification").options == ["bce", "balanced_bce"]
    model.selectbox(key="model_preset_multilabel_classification").set_value(
        "ResNet18 (timm) + linear head"
    ).run()
    model.radio(key="model_weights").set_value("None: random weights").run()
    config = built_config(model)
    assert config["model"]["class_path"] == "geoft.tasks.MultiLabelClassificationTask"
    assert config["data"]["init_args"]["train_labels_file"].endswith("tags/train/labels.csv")
    model.button(key="model_check").click().run()
    assert not model.exception and "output [2, 2]" in texts(model, "success"), texts(model, "error")
