"""End to end on tiny demo data: fit -> test -> predict -> export, and a TerraTorch-shaped config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml

from geoft.cli import main

REPO = Path(__file__).resolve().parents[2]
GEOFT = REPO / ".venv" / "bin" / "geoft"


def _geoft(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = [str(GEOFT)] if GEOFT.exists() else [sys.executable, "-m", "geoft.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run(exe + args, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_demo_workspace) -> Path:
    """Tiny demo data and a tiny version of configs/demo_prithvi_upernet.yaml."""
    return tiny_demo_workspace(tmp_path_factory.mktemp("e2e"), {"max_epochs": 2})


@pytest.mark.slow
def test_fit_test_predict_export(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fit = _geoft(["fit", "-c", "config.yaml", "--run_name", "run1"], workspace)
    assert fit.returncode == 0, fit.stderr[-3000:]
    run = workspace / "runs" / "run1"
    for name in (
        "config.yaml",
        "deploy_config.yaml",
        "metrics.csv",
        "metrics.jsonl",
        "checkpoints/last.ckpt",
    ):
        assert (run / name).is_file(), name
    best = list((run / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1
    assert not list(run.rglob("*.tmp")), "temporary checkpoint files left behind"

    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "start" and events[0]["max_epochs"] == 2
    assert events[-1]["event"] == "end" and events[-1]["status"] == "finished"
    assert Path(events[-1]["best_model_path"]).resolve() == best[0].resolve()
    val_epochs = {e["epoch"] for e in events if e["event"] == "metrics" and e["stage"] == "val"}
    assert val_epochs == {0, 1}
    assert all(np.isfinite(v) for e in events if e["event"] == "metrics" for v in e["metrics"].values())

    deploy = yaml.safe_load((run / "deploy_config.yaml").read_text())
    assert "optimizer" not in deploy and "lr_scheduler" not in deploy
    assert "optimizer" not in deploy["model"]["init_args"]
    assert deploy["model"]["init_args"]["model_args"]["backbone_pretrained"] is False
    assert "callbacks" not in deploy["trainer"]

    ckpt = str(run / "checkpoints" / "last.ckpt")
    # main() resolves relative paths against the working directory; run it from the workspace
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        assert main(["test", "-c", "config.yaml", "--ckpt_path", ckpt, "--run_name", "run1"]) == 0
        test_lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        test_metrics = [e for e in test_lines if e["event"] == "metrics" and e["stage"] == "test"]
        assert test_metrics and "test/mIoU" in test_metrics[-1]["metrics"]
        assert (run / "test" / "metrics.csv").is_file()  # the fit metrics.csv is kept
    finally:
        os.chdir(cwd)

    predict = _geoft(
        [
            "predict", "-c", "config.yaml", "--ckpt_path", ckpt,
            "--data.init_args.predict_data_root", "data/demo/val/images", "--predict_output_dir", "preds",
        ],
        workspace,
    )  # fmt: skip
    assert predict.returncode == 0, predict.stderr[-3000:]
    inputs = sorted((workspace / "data" / "demo" / "val" / "images").glob("*.tif"))
    assert len(inputs) == 2
    for image in inputs:
        pred = workspace / "preds" / f"{image.stem}_pred.tif"
        probs = workspace / "preds" / f"{image.stem}_probabilities.tif"
        with rasterio.open(image) as src, rasterio.open(pred) as out, rasterio.open(probs) as p:
            assert out.crs == src.crs and out.transform == src.transform and out.shape == src.shape
            assert out.dtypes[0] == "uint8" and out.colormap(1)[0] is not None
            assert json.loads(out.tags(1)["class_names"])[0] == "water"
            assert p.count == 5 and p.transform == src.transform
            classes = out.read(1)
            assert classes.max() < 5
            np.testing.assert_allclose(p.read().sum(0), 1.0, rtol=1e-4)

    capsys.readouterr()
    assert (
        main(
            [
                "export",
                "-c",
                str(workspace / "config.yaml"),
                "--ckpt_path",
                ckpt,
                "-o",
                str(workspace / "m.onnx"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "verified against PyTorch" in printed
    import onnxruntime as ort

    from geoft.export_verify import verify_onnx
    from geoft.runs.restore import load_checkpoint, task_from_checkpoint

    task = task_from_checkpoint(load_checkpoint(ckpt), None, ckpt)  # rebuilt from the checkpoint alone
    x = torch.randn(2, 6, 32, 32)
    assert verify_onnx(task, workspace / "m.onnx", [x]) < 1e-3
    session = ort.InferenceSession(str(workspace / "m.onnx"))
    assert session.run(None, {"image": x.numpy()})[0].shape == (2, 5, 32, 32)

    # a scene larger than the tiles, predicted block by block from the same checkpoint
    scene, scene_pred = workspace / "scene.tif", workspace / "scene_pred.tif"
    with rasterio.open(inputs[0]) as src:
        profile = {**src.profile, "height": 70, "width": 90}
        pixels = np.tile(src.read(), (1, 3, 3))[:, :70, :90]
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(pixels)
    args = ["--input", str(scene), "--output", str(scene_pred), "--block_size", "32"]
    assert main(["predict-scene", "-c", str(workspace / "config.yaml"), "--ckpt_path", ckpt, *args]) == 0
    with rasterio.open(scene) as src, rasterio.open(scene_pred) as out:
        assert out.transform == src.transform and out.crs == src.crs and out.shape == (70, 90)
        assert out.read(1).max() < 5
        default_classes = out.read(1)
    # full precision on request; the default (bf16 autocast where native) agrees on almost every pixel
    fp32_pred = workspace / "scene_pred_fp32.tif"
    args = ["--input", str(scene), "--output", str(fp32_pred), "--precision", "32-true", "--max_width", "48"]
    assert main(["predict-scene", "-c", str(workspace / "config.yaml"), "--ckpt_path", ckpt, *args]) == 0
    with rasterio.open(fp32_pred) as out:
        agreement = float((out.read(1) == default_classes).mean())
    assert agreement > 0.95, agreement


@pytest.mark.slow
def test_terratorch_shaped_config_runs(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    config["model"]["class_path"] = "terratorch.tasks.SemanticSegmentationTask"
    config["data"]["class_path"] = "terratorch.datamodules.GenericNonGeoSegmentationDataModule"
    config["out_dtype"] = "int16"  # a reference-CLI key
    config["trainer"]["max_epochs"] = 1
    config["trainer"]["limit_train_batches"] = 1
    config["trainer"]["limit_val_batches"] = 1
    config["trainer"]["default_root_dir"] = str(workspace / "tt_runs")
    for split in ("train", "val", "test", "predict"):
        for key in (f"{split}_data_root", f"{split}_label_data_root"):
            if key in config["data"]["init_args"]:
                config["data"]["init_args"][key] = str(workspace / config["data"]["init_args"][key])
    path = workspace / "terratorch.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["fit", "-c", str(path), "--run_name", "tt"]) == 0
    err = capsys.readouterr().err
    assert "using geoft.tasks.SemanticSegmentationTask for terratorch.tasks.SemanticSegmentationTask" in err
    assert "ignoring out_dtype" in err
    saved = yaml.safe_load((workspace / "tt_runs" / "tt" / "config.yaml").read_text())
    assert saved["model"]["class_path"] == "geoft.tasks.SemanticSegmentationTask"
    assert (workspace / "tt_runs" / "tt" / "checkpoints" / "last.ckpt").is_file()
