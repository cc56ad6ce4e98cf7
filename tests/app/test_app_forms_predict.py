"""Config building (presets that train), the demo config, prediction to GeoTIFF and ONNX export of a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from geoft.app.forms import PRESETS, DataChoice, TrainChoice, build_config, config_from_yaml
from geoft.app.model_check import dry_run
from geoft.app.run_store import COMPLETED, RunStore
from geoft.app.settings import load_settings
from geoft.errors import ConfigError

BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


@pytest.fixture(scope="module")
def demo_setup(tmp_path_factory):
    from geoft.app import demo

    home = tmp_path_factory.mktemp("home")
    settings = load_settings(
        {"GEOFT_HOME": str(home), "GEOFT_DEMO_CHIPS": "8", "GEOFT_DEMO_SIZE": "32", "GEOFT_DEMO_EPOCHS": "1"}
    )
    settings.ensure_dirs()
    dataset = demo.ensure_demo_dataset(settings)
    return settings, dataset, demo.demo_config(settings, dataset)


def test_demo_config_is_prithvi_upernet_on_six_bands(demo_setup):
    settings, dataset, config = demo_setup
    args = config["model"]["init_args"]["model_args"]
    assert args["backbone"] == "prithvi_eo_tiny" and args["decoder"] == "UperNetDecoder"
    assert args["backbone_bands"] == BANDS
    assert config["trainer"]["max_epochs"] == 1
    assert config["data"]["init_args"]["train_data_root"].startswith(str(dataset))
    report = dry_run(config)
    assert report.used_real_batch
    assert report.output_shape[1:] == (5, 32, 32)  # five demo classes at full resolution


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_runs_one_batch(demo_setup, preset: str):
    settings, dataset, demo_cfg = demo_setup
    init = demo_cfg["data"]["init_args"]
    owned = ("num_classes", "class_names", "dataset_bands", "means", "stds", "batch_size", "num_workers")
    data = DataChoice(
        str(dataset),
        {k: v for k, v in init.items() if k not in owned},
        init["class_names"],
        BANDS,
        init["means"],
        init["stds"],
    )
    report = dry_run(build_config(data, PRESETS[preset], TrainChoice(batch_size=2)))
    assert report.output_shape == (2, 5, 32, 32)
    assert report.trainable_params == report.total_params > 100_000


def test_frozen_backbone_counts_fewer_trainable(demo_setup):
    _, dataset, cfg = demo_setup
    cfg = json.loads(json.dumps(cfg))
    cfg["model"]["init_args"]["freeze_backbone"] = True
    report = dry_run(cfg)
    assert report.trainable_params < report.total_params


def test_config_from_yaml_errors():
    with pytest.raises(ConfigError, match="not valid YAML"):
        config_from_yaml("a: [1, 2")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        config_from_yaml("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="no data, model section"):
        config_from_yaml("trainer: {}\n")
    with pytest.raises(ConfigError, match="outside the allowed packages"):
        config_from_yaml("data: {class_path: subprocess.Popen}\nmodel: {}\n")
    with pytest.raises(ConfigError, match="two classes"):
        build_config(DataChoice("x", {}, ["one"], BANDS), PRESETS["Prithvi tiny + UPerNet"], TrainChoice())


def test_predict_run_to_georeferenced_geotiff_and_map(demo_setup, tmp_path: Path):
    """Train one step in-process (the checkpoint a real run leaves), then predict like the app does."""
    import lightning.pytorch as pl

    from geoft.app import demo
    from geoft.app.maps import external_urls
    from geoft.registry import import_object

    settings, dataset, config = demo_setup
    run_dir = settings.runs_root / "r1"
    dm = import_object(config["data"]["class_path"])(**config["data"]["init_args"])
    task = import_object(config["model"]["class_path"])(**config["model"]["init_args"])
    trainer = pl.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(task, dm)
    run_dir.mkdir(parents=True)
    trainer.save_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "app.json").write_text(json.dumps({"dataset_root": str(dataset)}))
    store = RunStore(settings.store_path)
    store.add("r1", "demo", run_dir, "cpu", tags=["demo"], status=COMPLETED)
    result = demo.demo_prediction(settings, store.get("r1"))
    with rasterio.open(result.image) as img, rasterio.open(result.prediction) as pred:
        assert pred.crs == img.crs and pred.transform == img.transform and pred.shape == img.shape
        classes = pred.read(1)
        assert classes.max() < 5 and pred.colormap(1)  # class map with an embedded colour table
    assert result.class_names[0] == "water"
    m = demo.demo_map(result, "/app/static/leaflet/leaflet.js", "/app/static/leaflet/leaflet.css", 0.5)
    assert external_urls(m) == []
    assert m.get_root().render().count("L.imageOverlay") == 3  # image, ground truth, prediction
    assert np.isfinite(classes).all()
    from geoft.app.predict import predict_to_geotiff

    calls: list[tuple[int, int]] = []
    again = predict_to_geotiff(
        store.get("r1"), result.image, tmp_path / "again.tif", progress=lambda d, t: calls.append((d, t))
    )
    assert calls and calls[-1][0] == calls[-1][1]  # progress reached the total
    with rasterio.open(again) as a, rasterio.open(result.prediction) as b:
        assert (a.read(1) == b.read(1)).all()


@pytest.mark.slow
def test_export_run_to_onnx(demo_setup):
    import onnxruntime as ort

    from geoft.app.exporting import export_run_onnx

    settings, _, _ = demo_setup
    store = RunStore(settings.store_path)
    if not any(r.id == "r1" for r in store.list()):
        pytest.skip("needs the run trained by test_predict_run_to_georeferenced_geotiff_and_map")
    path = export_run_onnx(store.get("r1"))
    session = ort.InferenceSession(str(path))
    out = session.run(None, {"image": np.zeros((1, 6, 64, 64), np.float32)})[0]
    assert out.shape == (1, 5, 64, 64)


def test_lora_switch_writes_peft_config_and_trains_adapters_only(demo_setup):
    import dataclasses

    _, dataset, demo_cfg = demo_setup
    init = demo_cfg["data"]["init_args"]
    owned = ("num_classes", "class_names", "dataset_bands", "means", "stds", "batch_size", "num_workers")
    data = DataChoice(
        str(dataset),
        {k: v for k, v in init.items() if k not in owned},
        init["class_names"],
        BANDS,
        init["means"],
        init["stds"],
    )
    base = PRESETS["Prithvi tiny + UPerNet"]
    lora = dataclasses.replace(base, lora_rank=4, lora_alpha=8)
    config = build_config(data, lora, TrainChoice(batch_size=2))
    peft = config["model"]["init_args"]["model_args"]["peft_config"]
    assert peft == {"method": "LORA", "peft_config_kwargs": {"r": 4, "lora_alpha": 8}}
    full = dry_run(build_config(data, base, TrainChoice(batch_size=2)))
    report = dry_run(config)
    assert report.trainable_params < full.trainable_params and report.total_params > full.total_params
    with pytest.raises(ConfigError, match="exclude each other"):
        build_config(data, dataclasses.replace(lora, freeze_backbone=True), TrainChoice())
