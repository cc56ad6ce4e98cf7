"""Several modalities and dates, without Streamlit: the layouts the Data page detects, the backbones the
Model page offers, and the config it builds (read back from YAML and trained by ``geoft fit``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import rasterio
import yaml

from geoft.app.forms import (
    DataChoice,
    ModelChoice,
    TrainChoice,
    build_config,
    config_from_yaml,
    config_to_yaml,
)
from geoft.app.fusion_choice import FusionChoice, fitting, fused_backbone_args, why_not
from geoft.app.modality_dates import date_in_name, read_dates
from geoft.app.modality_layout import MultiModalLayout, detect_modalities, multimodal_paths
from geoft.errors import ConfigError
from tests.app.multimodal_data import make_dated, make_two_sensors
from tests.app.test_app_pages import make_dataset


def by_name(layout: MultiModalLayout) -> dict:
    return {m.name: m for m in layout.modalities}


def test_one_folder_per_modality_at_two_resolutions(tmp_path: Path):
    layout = detect_modalities(make_two_sensors(tmp_path / "d", flat=False, drop_s1=2))
    assert layout is not None and layout.kind == "folders"
    assert layout.names == ["S2Hand", "S1GRD"]  # the richest first; S1 named as TerraMind knows it
    s2, s1 = layout.modalities
    assert (s2.file_count, s2.band_count, s2.size, s2.resolution) == (4, 6, (32, 32), (10.0, 10.0))
    assert (s1.file_count, s1.band_count, s1.size, s1.resolution) == (3, 2, (16, 16), (20.0, 20.0))
    assert s1.bands == ["VV", "VH"] and s1.crs == "EPSG:32633"
    assert layout.missing(s1) == ["chip_2"] and layout.missing(s2) == []
    assert layout.complete_count() == 3 and layout.label_grep == "*_LabelHand.tif"
    assert s2.image_grep == "*_S2Hand.tif" and s2.folders["all"].name == "S2Hand"


def test_name_patterns_in_one_folder(tmp_path: Path):
    root = make_two_sensors(tmp_path / "d", flat=True)
    layout = detect_modalities(root)
    assert layout is not None and layout.kind == "patterns"
    assert {m.token: m.image_grep for m in layout.modalities} == {
        "_S2Hand": "*_S2Hand.tif",
        "_S1Hand": "*_S1Hand.tif",
    }
    assert all(m.folders["all"] == root for m in layout.modalities) and layout.complete_count() == 4


def test_split_folders_each_with_a_folder_per_modality(tmp_path: Path):
    make_two_sensors(tmp_path / "d" / "train", flat=False)
    make_two_sensors(tmp_path / "d" / "val", flat=False, n=2)
    layout = detect_modalities(tmp_path / "d")
    paths = multimodal_paths(layout)
    assert paths["train_data_root"]["S1GRD"] == str(tmp_path / "d" / "train" / "S1Hand")
    assert paths["val_data_root"]["S2Hand"] == str(tmp_path / "d" / "val" / "S2Hand")
    assert paths["val_label_data_root"] == str(tmp_path / "d" / "val" / "LabelHand")
    assert by_name(layout)["S2Hand"].file_count == 6 and "allow_missing_modalities" not in paths


def test_a_single_stack_of_bands_is_not_multimodal(tmp_path: Path):
    assert detect_modalities(make_dataset(tmp_path / "d")) is None


def test_dated_files_propose_a_time_grep_and_name_the_odd_sample(tmp_path: Path):
    layout = detect_modalities(make_dated(tmp_path / "d", short=1))
    assert layout is not None
    s2 = by_name(layout)["S2"]
    assert s2.time_grep == "{sample}_S2_{date:%Y%m%d}.tif" and s2.image_grep == "*_S2_" + "[0-9]" * 8 + ".tif"
    assert s2.dates.date_count == 3 and s2.dates.odd_samples() == {"field_1": 2}
    assert s2.dates.dates["field_0"] == [datetime(2020, 1, 5), datetime(2020, 3, 1), datetime(2020, 5, 10)]
    assert any("field_1 (2)" in p for p in s2.problems)
    assert layout.label_grep == "*_mask.tif" and layout.complete_count() == 3


def test_one_dated_modality_beside_its_masks(tmp_path: Path):
    root = make_dated(tmp_path / "d")
    for path in root.glob("*_S1_*.tif"):
        path.unlink()
    for path in root.glob("*_S2_*.tif"):
        path.rename(path.with_name(path.name.replace("_S2_", "_")))  # field_0_20200105.tif
    layout = detect_modalities(root)
    (image,) = layout.modalities
    assert image.time_grep == "{sample}_{date:%Y%m%d}.tif" and image.dates.date_count == 3
    assert image.image_grep == "*_" + "[0-9]" * 8 + ".tif"  # the masks beside them are no images
    assert layout.complete_count() == 3 and not image.problems


def test_dates_from_tags(tmp_path: Path):
    make_two_sensors(tmp_path / "d", flat=False, n=2)
    files = sorted((tmp_path / "d" / "S2Hand").glob("*.tif"))
    assert read_dates(files, None).source == "none"  # no tag: read without dates
    for i, path in enumerate(files):
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(ACQUISITIONDATETIME=f"2021-0{i + 1}-15T10:00:00")
    dated = read_dates(files, None)
    assert dated.source == "tags" and dated.dates[files[1].name] == [datetime(2021, 2, 15, 10)]
    layout = detect_modalities(tmp_path / "d")
    assert by_name(layout)["S2Hand"].dates.source == "tags"


def test_date_forms_in_names():
    assert date_in_name("x_2020-05-01.tif").date == datetime(2020, 5, 1)
    assert date_in_name("T32_2020122_B.tif").date == datetime(2020, 5, 1)  # year and day of year
    assert date_in_name("chip_12345678.tif") is None  # no plausible date
    assert date_in_name("chip_7370579.tif") is None


def test_the_analysts_names_bands_and_date_pattern_win(tmp_path: Path):
    root = make_dated(tmp_path / "d")
    overrides = {
        "_S2": {"name": "S2L2A", "bands": ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]},
        "_S1": {"time_grep": "{sample}_S1_{date:%d%m%Y}.tif"},  # a wrong pattern: dates do not parse
    }
    layout = detect_modalities(root, overrides)
    s2, s1 = by_name(layout)["S2L2A"], by_name(layout)["S1GRD"]
    assert s2.bands[0] == "BLUE" and s1.time_grep == "{sample}_S1_{date:%d%m%Y}.tif"
    assert any("is not a date" in p and "field_0_S1_20200105.tif" in p for p in s1.problems)
    bad = detect_modalities(root, {"_S2": {"bands": ["RED"]}})
    assert any("1 band names for 6 bands" in p for p in by_name(bad)["S2"].problems)


def test_backbones_that_fit(tmp_path: Path):
    names = ["prithvi_eo_tiny", "terramind_v1_tiny", "late_fusion", "timm_resnet18"]
    kept, refused = fitting(names, "concat_bands", ["S2L1C", "S1GRD"], 1)
    assert kept == ["prithvi_eo_tiny", "timm_resnet18"] and set(refused) == {
        "terramind_v1_tiny",
        "late_fusion",
    }
    assert fitting(names, "terramind", ["S2L1C", "S1GRD"], 1)[0] == ["terramind_v1_tiny"]
    assert "S2Hand" in why_not("terramind_v1_tiny", "terramind", ["S2Hand", "S1GRD"], 1)
    assert "one date" in why_not("terramind_v1_tiny", "terramind", ["S2L1C"], 3)


def test_fusion_arguments():
    bands = {"S2L2A": ["BLUE", "GREEN", "RED"], "S1GRD": ["VV", "VH"]}
    terramind = fused_backbone_args(
        "terramind_v1_tiny", {}, bands, False, {}, FusionChoice(method="terramind")
    )
    assert terramind == {
        "backbone": "terramind_v1_tiny",
        "backbone_pretrained": False,
        "backbone_modalities": ["S2L2A", "S1GRD"],
        "backbone_bands": bands,
    }
    concat = fused_backbone_args(
        "prithvi_eo_tiny",
        {"prithvi_eo_tiny": "bands"},
        bands,
        False,
        {},
        FusionChoice(dates=3, temporal_pooling="concat"),
    )
    assert concat["backbone_bands"] == ["BLUE", "GREEN", "RED", "VV", "VH"]
    assert concat["backbone_use_temporal"] and concat["backbone_temporal_n_timestamps"] == 3
    with pytest.raises(ConfigError, match="diff"):
        fused_backbone_args(
            "prithvi_eo_tiny", {}, bands, False, {}, FusionChoice(dates=3, temporal_pooling="diff")
        )
    with pytest.raises(ConfigError, match="time axis"):
        fused_backbone_args(
            "timm_resnet18", {}, bands, False, {}, FusionChoice(dates=3, temporal_mode="frames")
        )
    with pytest.raises(ConfigError, match="late fusion reads the dates"):
        fused_backbone_args(
            "prithvi_eo_tiny", {}, bands, False, {}, FusionChoice(method="late_fusion", dates=2)
        )


def _config(root: Path, fusion: FusionChoice, backbone: str = "prithvi_eo_tiny") -> dict:
    layout = detect_modalities(root)
    bands = {m.name: list(m.bands) for m in layout.modalities}
    data = DataChoice(
        root=str(root),
        paths=multimodal_paths(layout, allow_missing=True),
        class_names=["dry", "water"],
        bands=[b for v in bands.values() for b in v],
        modality_bands=bands,
        modality_dataset_bands=bands,
    )
    train = TrainChoice(max_epochs=1, batch_size=2, precision="32-true")
    return build_config(data, ModelChoice(backbone=backbone, fusion=fusion), train)


def test_the_multimodal_config_is_what_the_datamodule_reads_and_round_trips(tmp_path: Path):
    config = _config(
        make_two_sensors(tmp_path / "d", flat=False, drop_s1=2), FusionChoice(method="late_fusion")
    )
    assert config_from_yaml(config_to_yaml(config)) == config
    init = config["data"]["init_args"]
    assert config["data"]["class_path"] == "geoft.datamodules.GenericMultiModalDataModule"
    assert init["modalities"] == ["S2Hand", "S1GRD"] and init["allow_missing_modalities"] is True
    assert init["train_data_root"]["S1GRD"].endswith("S1Hand") and "concat_bands" not in init
    encoders = config["model"]["init_args"]["model_args"]["backbone_encoders"]
    assert encoders["S1GRD"]["bands"] == ["VV", "VH"] and len(encoders["S2Hand"]["bands"]) == 6


@pytest.mark.parametrize(
    ("dated", "fusion", "backbone"),
    [
        (False, FusionChoice(), "prithvi_eo_tiny"),
        (True, FusionChoice(dates=3), "prithvi_eo_tiny"),
        (True, FusionChoice(dates=3, temporal_mode="frames", use_metadata=True), "prithvi_eo_v2_tiny_tl"),
    ],
    ids=["two-sensors", "three-dates-temporal-wrapper", "three-dates-frames-metadata"],
)
def test_the_built_config_trains_with_geoft_fit(
    tmp_path: Path, capsys, dated: bool, fusion: FusionChoice, backbone: str
):
    from geoft.cli import main

    root = tmp_path / "d"
    (make_dated(root) if dated else make_two_sensors(root, flat=False))
    config = _config(root, fusion, backbone)
    config["trainer"].update(
        {"max_steps": 2, "limit_val_batches": 1, "default_root_dir": str(tmp_path / "out")}
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["fit", "-c", str(path)]) == 0, capsys.readouterr().err
    assert list((tmp_path / "out").rglob("*.ckpt")), "geoft fit wrote no checkpoint"
