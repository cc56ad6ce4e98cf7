"""CLI pieces: config translation, run folders, metrics.jsonl, deploy config, the GeoTIFF writer, small commands."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.transform import from_origin

from geoft.cli import main
from geoft.config_compat import resolve_name, rewrite_config_args, translate
from geoft.errors import ConfigError
from geoft.prediction_writer import GeoTiffPredictionWriter


def test_terratorch_and_short_names_resolve() -> None:
    notes: list[str] = []
    config = {
        "model": {"class_path": "terratorch.tasks.SemanticSegmentationTask", "init_args": {"x": 1}},
        "data": {"class_path": "GenericNonGeoSegmentationDataModule"},
        "trainer": {"callbacks": [{"class_path": "EarlyStopping"}]},
        "out_dtype": "int16",
    }
    out = translate(config, notes.append)
    assert out["model"]["class_path"] == "geoft.tasks.SemanticSegmentationTask"
    assert out["data"]["class_path"] == "geoft.datamodules.GenericNonGeoSegmentationDataModule"
    assert (
        out["trainer"]["callbacks"][0]["class_path"] == "EarlyStopping"
    )  # Lightning's, left to jsonargparse
    assert "out_dtype" not in out
    assert any("terratorch.tasks.SemanticSegmentationTask" in n for n in notes)
    assert any("out_dtype" in n for n in notes)


def test_unknown_terratorch_name_and_custom_modules_are_errors() -> None:
    with pytest.raises(ConfigError, match="no geoft equivalent"):
        resolve_name("terratorch.datamodules.Sen1Floods11NonGeoDataModule", print)
    with pytest.raises(ConfigError, match="custom_modules_path"):
        translate({"custom_modules_path": "my_modules"}, print)


def test_config_files_become_config_text(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  class_path: terratorch.tasks.ClassificationTask\n")
    argv = rewrite_config_args(["fit", "-c", str(path), "--trainer.max_epochs", "1"], lambda _: None)
    assert argv[0] == "fit" and argv[1] == "--config" and argv[3:] == ["--trainer.max_epochs", "1"]
    assert yaml.safe_load(argv[2])["model"]["class_path"] == "geoft.tasks.ClassificationTask"


def test_errors_print_a_message_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "-c", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml does not exist" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  class_path: terratorch.datamodules.Sen1Floods11NonGeoDataModule\n")
    assert main(["validate-data", "-c", str(bad)]) == 2
    assert "no geoft equivalent" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert main([]) == 0 and "commands:" in capsys.readouterr().out


def test_demo_data_validate_and_statistics_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert (
        main(["demo-data", str(out), "--n_train", "2", "--n_val", "1", "--n_test", "1", "--size", "16"]) == 0
    )
    info = json.loads((out / "dataset.json").read_text())
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": info["datamodule"]}))
    assert main(["validate-data", "-c", str(config)]) == 0
    assert "No problems found" in capsys.readouterr().out
    assert main(["compute_statistics", "-c", str(config), "--json", "--no_cache"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert len(stats["means"]) == 6 and stats["num_samples"] == 2
    # a bad model config fails before training: message, exit 2, and no empty run folder left behind
    bad_model = {
        "model": {
            "class_path": "SemanticSegmentationTask",
            "init_args": {
                "model_factory": "EncoderDecoderFactory",
                "model_args": {"backbone": "no_such_backbone", "decoder": "FCNDecoder", "num_classes": 5},
            },
        },
        "data": info["datamodule"],
        "trainer": {"default_root_dir": str(tmp_path / "runs")},
    }
    bad = tmp_path / "bad_model.yaml"
    bad.write_text(yaml.safe_dump(bad_model))
    assert main(["fit", "-c", str(bad)]) == 2
    assert "Unknown backbone 'no_such_backbone'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # a broken dataset is reported, with a non-zero status
    next((out / "train" / "labels").glob("*.tif")).unlink()
    assert main(["validate-data", "-c", str(config)]) == 1
    assert "error" in capsys.readouterr().out


def _source(path: Path, nodata_box: bool = True) -> None:
    data = np.full((2, 20, 30), 100, dtype=np.int16)
    if nodata_box:
        data[:, :3, :4] = -9999
    profile = {
        "driver": "GTiff", "height": 20, "width": 30, "count": 2, "dtype": "int16", "nodata": -9999,
        "crs": "EPSG:32632", "transform": from_origin(400000, 5000000, 20, 20),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def test_writer_copies_georeferencing_and_nodata_and_writes_classes(tmp_path: Path) -> None:
    src = tmp_path / "scene_a.tif"
    _source(src)
    task = SimpleNamespace(num_classes=3, hparams={"class_names": ["water", "land", "cloud"]})
    writer = GeoTiffPredictionWriter(tmp_path / "out", outputs=("prediction", "probabilities"))
    probs = torch.softmax(torch.randn(2, 3, 20, 30), 1)
    prediction = {
        "prediction": probs.argmax(1),
        "probabilities": probs,
        "filename": [str(src), str(tmp_path / "gone.tif")],
        "crs": ["EPSG:32632", "EPSG:4326"],
        "transform": [None, (0.1, 0.0, 10.0, 0.0, -0.1, 50.0)],
    }
    trainer = SimpleNamespace(global_rank=0)
    writer.write_on_batch_end(trainer, task, prediction, None, None, 0, 0)
    with rasterio.open(tmp_path / "out" / "scene_a_pred.tif") as out, rasterio.open(src) as s:
        assert out.crs == s.crs and out.transform == s.transform and out.dtypes[0] == "uint8"
        classes = out.read(1)
        assert (classes[:3, :4] == out.nodata).all()
        np.testing.assert_array_equal(classes[3:], probs[0].argmax(0).numpy()[3:])
        assert out.tags(1)["CLASS_2"] == "cloud" and out.colormap(1)[1][3] == 255
    with rasterio.open(tmp_path / "out" / "scene_a_probabilities.tif") as p:
        assert p.count == 3 and p.descriptions == ("p(water)", "p(land)", "p(cloud)")
        assert np.isnan(p.read(1)[0, 0])
    # the second input no longer exists: the batch's CRS and transform are used
    with rasterio.open(tmp_path / "out" / "gone_pred.tif") as out:
        assert out.crs.to_epsg() == 4326 and out.transform.c == 10.0 and out.transform.a == 0.1


def test_writer_regression_is_float32_and_rejects_non_maps(tmp_path: Path) -> None:
    src = tmp_path / "b.tif"
    _source(src, nodata_box=False)
    writer = GeoTiffPredictionWriter(tmp_path / "out")
    task = SimpleNamespace(num_classes=None, hparams={})
    values = torch.rand(1, 20, 30)
    writer.write_on_batch_end(
        SimpleNamespace(global_rank=0), task, {"prediction": values, "filename": [str(src)]}, None, None, 0, 0
    )
    with rasterio.open(tmp_path / "out" / "b_pred.tif") as out:
        assert out.dtypes[0] == "float32"
        np.testing.assert_allclose(out.read(1), values[0].numpy())
    with pytest.raises(ConfigError, match="not maps"):
        writer.write_on_batch_end(
            SimpleNamespace(global_rank=0), task, {"prediction": torch.zeros(2)}, None, None, 0, 0
        )
