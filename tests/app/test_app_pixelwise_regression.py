"""Pixel-wise regression in the app: the Data page's value summary, the presets' configs and a real
``geoft fit`` of one, and the Data → Model path in AppTest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from geoft.app.data_summary import datamodule_paths, summarize
from geoft.app.forms import (
    PIXELWISE_PRESETS,
    DataChoice,
    TrainChoice,
    build_config,
    config_from_yaml,
    config_to_yaml,
    task_kind_of,
)
from geoft.app.pixelwise_data import summarize_pixel_values
from geoft.task_kinds import TaskKind
from tests.app.test_app_pages import make_dataset
from tests.app.test_app_task_forms import fit_two_steps

HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def make_value_rasters(root: Path) -> Path:
    """The segmentation test dataset with float targets in [0, 5) and one NaN pixel per target."""
    make_dataset(root)
    rng = np.random.default_rng(1)
    for path in sorted(root.glob("*/labels/*.tif")):
        with rasterio.open(path) as src:
            profile = src.profile
        values = rng.uniform(0, 5, (profile["height"], profile["width"])).astype("float32")
        values[0, 0] = np.nan
        profile.update(dtype="float32", count=1, nodata=None)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values, 1)
    return root


@pytest.fixture(scope="module")
def value_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_value_rasters(tmp_path_factory.mktemp("pixelwise") / "heights")


def test_value_summary_range_missing_pixels_and_histogram(value_root: Path):
    summary = summarize(value_root, max_label_reads=0)
    values = summarize_pixel_values(summary)
    assert values.rasters_read == values.rasters_total == 6 and not values.problems
    assert 0 <= values.low < values.high < 5 and values.missing_pixels == 6
    assert sum(values.counts) == values.valid_pixels == 6 * (32 * 32 - 1)
    assert len(values.edges) == len(values.counts) + 1


def test_value_summary_says_when_no_target_can_train(tmp_path: Path):
    root = make_dataset(tmp_path / "empty")
    for path in root.glob("*/labels/*.tif"):
        with rasterio.open(path) as src:
            profile = src.profile
        profile.update(dtype="float32", nodata=None)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.full((profile["height"], profile["width"]), np.nan, "float32"), 1)
    values = summarize_pixel_values(summarize(root, max_label_reads=0))
    assert values.low is None and "no valid value" in values.problems[0]


def value_data(root: Path) -> DataChoice:
    return DataChoice(str(root), datamodule_paths(summarize(root, max_label_reads=0)), [], HLS)


@pytest.mark.parametrize("preset", list(PIXELWISE_PRESETS))
def test_pixelwise_presets_build_the_config_fit_reads(value_root: Path, preset: str):
    data = value_data(value_root)
    data.ignore_index = -1
    config = build_config(data, PIXELWISE_PRESETS[preset], TrainChoice())
    init = config["model"]["init_args"]
    assert config["model"]["class_path"] == "geoft.tasks.PixelwiseRegressionTask"
    assert config["data"]["class_path"] == "geoft.datamodules.GenericNonGeoPixelwiseRegressionDataModule"
    assert init["loss"] == "mse" and "class_names" not in init and "num_classes" not in init["model_args"]
    assert init["ignore_index"] == -1 == config["data"]["init_args"]["ignore_index"]
    assert "num_classes" not in config["data"]["init_args"]
    assert config_from_yaml(config_to_yaml(config)) == config and task_kind_of(config) == TaskKind.REGRESSION


def test_pixelwise_config_trains_with_geoft_fit(value_root: Path, tmp_path: Path):
    preset = PIXELWISE_PRESETS["ResNet18 (timm) + U-Net (smp, one value per pixel)"]
    data = value_data(value_root)
    (tmp_path / "refused").mkdir()
    with pytest.raises(AssertionError):  # NaN targets without an ignored value: refused before step one
        fit_two_steps(build_config(data, preset, TrainChoice()), tmp_path / "refused")
    data.ignore_index = -1  # NaN target pixels become -1, counted in no loss and no metric
    (tmp_path / "trained").mkdir()
    metrics = fit_two_steps(build_config(data, preset, TrainChoice()), tmp_path / "trained")
    assert {"val/RMSE", "val/MAE", "val/R2_Score"} <= set(metrics), sorted(metrics)


def test_value_rasters_on_the_data_and_model_pages(home: Path):
    from tests.app.test_app_task_pages import built_config, labels_radio, page, texts, use_folder

    make_value_rasters(home / "data" / "heights")
    at = page("pages/1_Data.py")
    use_folder(at, "heights")
    labels_radio(at).set_value(TaskKind.REGRESSION).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Image/target pairs"] == "6" and metrics["Size"] == "32×32"
    assert 0 <= float(metrics["Minimum"]) < float(metrics["Maximum"]) < 5
    assert not at.error, texts(at, "error")
    assert "6 target pixels are NaN" in texts(at, "warning")
    dataset = at.session_state["geoft_dataset"]

    model = page("pages/2_Model.py", {"geoft_dataset": dataset})
    assert not model.exception, model.exception
    assert "**Task:** Value rasters" in texts(model, "markdown")
    assert model.selectbox(key="model_loss_regression").options == ["mse", "mae", "rmse", "huber"]
    model.selectbox(key="model_preset_regression").set_value(
        "ResNet18 (timm) + U-Net (smp, one value per pixel)"
    ).run()
    model.radio(key="model_weights").set_value("None: random weights").run()
    config = built_config(model)
    assert config["model"]["class_path"] == "geoft.tasks.PixelwiseRegressionTask"
    assert config["data"]["init_args"].get("train_label_data_root", "").endswith("train/labels"), texts(
        model, "error"
    )
    assert yaml.safe_load(config_to_yaml(config)) == config
    model.button(key="model_check").click().run()
    assert "1 pixels are nodata or NaN" in texts(model, "error")  # the check names the NaN targets
    model.checkbox(key="model_use_ignore").check().run()
    assert built_config(model)["model"]["init_args"]["ignore_index"] == -1
    model.button(key="model_check").click().run()
    assert not model.exception and "output [2, 32, 32]" in texts(model, "success"), texts(model, "error")
