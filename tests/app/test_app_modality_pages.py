"""AppTest (no browser): the Data and Model pages on two sensors at two resolutions, on dated files,
and (GEOFT_REAL_DATA) on the Sen1Floods11 chip's S2Hand/S1Hand/LabelHand files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.app.multimodal_data import make_dated, make_two_sensors
from tests.app.test_app_pages import run_page
from tests.conftest import cut_sen1floods11_tiles

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind)).replace("\\_", "_")


def data_page(folder: str) -> AppTest:
    at = run_page("pages/1_Data.py", timeout=120)
    at.text_input(key="data_typed").input(folder)
    at.button(key="data_use").click().run()
    assert not at.exception, at.exception
    return at


def modality_rows(at: AppTest) -> dict[str, dict]:
    table = next(d.value for d in at.dataframe if "modality" in d.value.columns)
    return {row["modality"]: row for row in table.to_dict("records")}


def model_page(dataset: str) -> AppTest:
    at = run_page("pages/2_Model.py", {"geoft_dataset": dataset}, timeout=180)
    assert not at.exception, at.exception
    at.radio(key="model_weights").set_value("None: random weights").run()
    return at


def built(at: AppTest) -> dict:
    return yaml.safe_load(at.code[-1].value)


def test_data_page_shows_two_sensors_and_the_sample_lacking_one(home: Path):
    make_two_sensors(home / "data" / "floods", flat=False, drop_s1=2)
    at = data_page("floods")
    rows = modality_rows(at)
    assert set(rows) == {"S2Hand", "S1GRD"}
    assert (rows["S2Hand"]["files"], rows["S2Hand"]["bands"], rows["S2Hand"]["pixel size"]) == (
        4,
        6,
        "10 × 10",
    )
    assert (rows["S1GRD"]["files"], rows["S1GRD"]["bands"], rows["S1GRD"]["pixel size"]) == (3, 2, "20 × 20")
    assert rows["S1GRD"]["samples lacking it"] == 1 and rows["S1GRD"]["size"] == "16×16"
    assert "1 sample(s) lack S1GRD: chip_2" in texts(at, "warning")
    assert "resampled onto the label grid" in texts(at, "info")
    assert "**3** samples have every modality" in texts(at, "markdown")
    # the analyst renames S2 and names its bands; the page reads the folder again with them
    at.text_input(key="mod_name_S2Hand").input("S2L2A")
    at.text_input(key="mod_bands_S2Hand").input("BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2")
    at.text_input(key="mod_classes").input("dry, water")
    next(b for b in at.button if b.label == "Use these modalities").click().run()
    assert not at.exception and not at.error, texts(at, "error")
    assert set(modality_rows(at)) == {"S2L2A", "S1GRD"}

    model = model_page(at.session_state["geoft_dataset"])
    assert "`S2L2A` (6 bands), `S1GRD` (2 bands)" in texts(model, "markdown")
    assert "TerraMind takes the modality dict itself" in texts(model, "markdown")  # hidden, with the reason
    config = built(model)
    init = config["data"]["init_args"]
    assert config["data"]["class_path"] == "geoft.datamodules.GenericMultiModalDataModule"
    assert init["concat_bands"] is True and init["allow_missing_modalities"] is True
    assert init["dataset_bands"]["S2L2A"][0] == "BLUE" and init["class_names"] == ["dry", "water"]
    args = config["model"]["init_args"]["model_args"]
    assert args["backbone_bands"] == ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2", "VV", "VH"]

    model.radio(key="model_fusion").set_value("late_fusion").run()
    model.radio(key="model_merge_method").set_value("concat").run()
    model.multiselect(key="model_bands_S2L2A").set_value(["RED", "NIR_NARROW"]).run()
    config = built(model)
    args = config["model"]["init_args"]["model_args"]
    assert args["backbone"] == "late_fusion" and args["backbone_merge_method"] == "concat"
    assert args["backbone_encoders"]["S2L2A"]["bands"] == ["RED", "NIR_NARROW"]
    assert config["data"]["init_args"]["output_bands"]["S2L2A"] == ["RED", "NIR_NARROW"]
    model.button(key="model_check").click().run()
    assert "output [2, 2, 32, 32]" in texts(model, "success"), texts(model, "error")
    model.button(key="model_use").click().run()  # every check before training passes on modality dicts
    assert not model.exception and model.session_state["geoft_config"] == config, texts(model, "error")
    model.radio(key="model_fusion").set_value("terramind").run()
    assert "TerraMind does not know" not in texts(model, "warning")  # S2L2A and S1GRD are its names
    assert built(model)["model"]["init_args"]["model_args"]["backbone_modalities"] == ["S2L2A", "S1GRD"]


def test_pages_with_dated_files(home: Path):
    make_dated(home / "data" / "fields", short=1)
    at = data_page("fields")
    rows = modality_rows(at)
    assert rows["S2"]["dates"] == "3 per sample (from names)"
    assert "{sample}_S2_{date:%Y%m%d}.tif" in texts(at, "markdown")
    assert "field_1 (2)" in texts(at, "error")  # the sample with another number of dates
    dates = next(d.value for d in at.dataframe if "acquired" in d.value.columns)
    assert dates.set_index("sample").loc["field_0", "acquired"] == "2020-01-05, 2020-03-01, 2020-05-10"

    model = model_page(at.session_state["geoft_dataset"])
    assert "**3 dates** per sample" in texts(model, "markdown")
    model.selectbox(key="model_temporal_pooling").set_value("max").run()
    config = built(model)
    args = config["model"]["init_args"]["model_args"]
    assert args["backbone_use_temporal"] is True and args["backbone_temporal_pooling"] == "max"
    assert config["data"]["init_args"]["time_grep"]["S1GRD"] == "{sample}_S1_{date:%Y%m%d}.tif"
    model.radio(key="model_temporal_mode").set_value("frames").run()
    assert built(model)["model"]["init_args"]["model_args"]["backbone_num_frames"] == 3
    model.selectbox(key="model_backbone_Prithvi tiny + UPerNet").set_value("prithvi_eo_v2_tiny_tl").run()
    assert (
        model.checkbox(key="model_use_metadata_True").value is True
    )  # a _tl backbone reads dates and places
    assert built(model)["data"]["init_args"]["use_metadata"] is True
    model.radio(key="model_fusion").set_value("terramind").run()
    assert not model.exception and "TerraMind reads one date per modality" in texts(model, "error")


def train_on(at: AppTest) -> AppTest:
    return next(r for r in at.radio if r.label == "Train on")


def test_a_flat_folder_stays_one_stack_until_its_modalities_are_chosen(home: Path):
    make_two_sensors(home / "data" / "flat", flat=True)
    at = data_page("flat")
    assert set(modality_rows(at)) == {"S2Hand", "S1GRD"}  # shown either way
    assert train_on(at).value == "single"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Chips"] == "4" and metrics["Bands"] == "6"  # the one-stack view, as before
    assert at.text_input(key="data_image_suffix").value == "_S2Hand"
    dataset = at.session_state["geoft_dataset"]
    single = model_page(dataset)
    assert built(single)["data"]["class_path"] == "geoft.datamodules.GenericNonGeoSegmentationDataModule"
    train_on(at).set_value("modalities").run()
    assert not at.exception and not at.metric and "**4** samples have every modality" in texts(at, "markdown")
    both = model_page(dataset)
    assert built(both)["data"]["class_path"] == "geoft.datamodules.GenericMultiModalDataModule"


def test_real_sen1floods11_chip_is_seen_as_s2_and_s1(home: Path, real_data: Path):
    cut_sen1floods11_tiles(real_data, home / "data" / "sen1floods11", tile=128)
    at = data_page("sen1floods11")
    rows = modality_rows(at)
    assert set(rows) == {"S2L1C", "S1GRD"}  # 13 Sentinel-2 bands (L1C) and VV, VH
    assert rows["S2L1C"]["bands"] == 13 and rows["S1GRD"]["bands"] == 2
    assert rows["S2L1C"]["files"] == 4 and rows["S2L1C"]["CRS"] == "EPSG:4326"
    train_on(at).set_value("modalities").run()
    assert not at.exception and not at.error, texts(at, "error")
    model = model_page(at.session_state["geoft_dataset"])
    model.radio(key="model_fusion").set_value("terramind").run()
    assert not model.exception and "TerraMind does not know" not in texts(model, "warning")
    args = built(model)["model"]["init_args"]["model_args"]
    assert args["backbone"].startswith("terramind_") and args["backbone_modalities"] == ["S2L1C", "S1GRD"]
