"""``geoft fit`` / ``geoft predict`` with ``--trainer.strategy ddp`` on 2 CPU processes (gloo).

Both runs are real ``geoft`` subprocesses on the same generated data and config; only ``devices`` and
the per-process ``batch_size`` differ. ``tests/scaleout/ddp_probe.py`` (on ``PYTHONPATH``) is passed as a
``trainer.callbacks`` entry and dumps every rank's final weights and synced metrics.

Why the runs are comparable: every epoch is ONE global batch (4 training chips; batch_size 4 in one
process, 2 per rank under DDP), so shuffling cannot change what a step sees, and the mean of the two
ranks' per-pixel-mean gradients equals the single process's gradient (same pixel count per chip, no
ignored pixels). The model (Prithvi tiny + IdentityDecoder + head) has no BatchNorm. Validation has
4 chips (2 per rank, no padding by DistributedSampler); torchmetrics syncs the metrics and
``val/loss`` is logged with ``sync_dist=True``. Precision is pinned to ``32-true`` (geoft's default
may be bf16-mixed, whose rounding would swamp the comparison) and ``seed_everything: 0`` makes the
initial weights equal.

Tolerance: float32 all-reduce sums in another order than one big backward pass, so weights and
metrics of the two runs agree to ~1e-6 relative; metrics must agree within ``rel=1e-4, abs=1e-5``.
Weights get ``atol=1e-4``: Adam divides by sqrt(v), which magnifies rounding differences of
near-zero gradients (measured: 1.5e-5 on one attention bias after 2 steps at lr 1e-3, i.e. <1% of
the 2e-3 that two Adam steps can move a weight). The two DDP ranks apply the same averaged gradient;
gloo's CPU all-reduce is not always bitwise identical on both ranks (seen: last-bit differences in
one run of several), so they must agree within 1e-6.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

HERE = Path(__file__).resolve().parent
GEOFT = Path(sys.executable).parent / "geoft"
BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
EPOCHS = 2
VAL_KEYS = ("val/loss", "val/mIoU", "val/Accuracy", "val/Pixel_Accuracy", "val/F1_Score")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geoft.datasets.demo import generate_demo_dataset

    root = tmp_path_factory.mktemp("ddp")
    info = generate_demo_dataset(root / "data", n_train=4, n_val=4, n_test=4, size=32, seed=3)
    data_args = info.datamodule_init_args()
    data_args.update(batch_size=4, num_workers=0, predict_data_root=str(info.image_dirs["val"]))
    model_args = {
        "backbone": "prithvi_eo_tiny",
        "backbone_pretrained": False,
        "backbone_bands": BANDS,
        "backbone_img_size": 32,
        "backbone_depth": 1,
        "decoder": "IdentityDecoder",
        "num_classes": 5,
    }
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "precision": "32-true",
            "max_epochs": EPOCHS,
            "deterministic": True,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(root / "runs"),
        },
        "model": {
            "class_path": "SemanticSegmentationTask",
            "init_args": {
                "model_factory": "EncoderDecoderFactory",
                "model_args": model_args,
                "loss": "ce",
                "lr": 1e-3,
                "plot_on_val": 0,
            },
        },
        "data": {"class_path": "GenericNonGeoSegmentationDataModule", "init_args": data_args},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _geoft(workspace: Path, *args: str) -> None:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GEOFT_RUN_DIR"):
        env.pop(key, None)
    cmd = [str(GEOFT), *args]
    result = subprocess.run(cmd, cwd=workspace, capture_output=True, text=True, timeout=150, env=env)
    assert result.returncode == 0, result.stderr[-4000:]


def _fit(workspace: Path, name: str, devices: int, batch_size: int) -> Path:
    probe = workspace / f"probe_{name}"
    args = ["fit", "-c", "config.yaml", "--run_name", name, "--trainer.devices", str(devices)]
    if devices > 1:
        args += ["--trainer.strategy", "ddp"]
    args += ["--data.init_args.batch_size", str(batch_size)]
    args += ["--trainer.callbacks+=ddp_probe.DumpState", "--trainer.callbacks.out_dir", str(probe)]
    _geoft(workspace, *args)
    return probe


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def runs(workspace: Path) -> tuple[Path, Path]:
    return _fit(workspace, "single", devices=1, batch_size=4), _fit(workspace, "ddp", devices=2, batch_size=2)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_fit_matches_single_process(runs: tuple[Path, Path]) -> None:
    single, ddp = runs
    ranks = [json.loads((ddp / f"metrics_{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    w0, w1 = (torch.load(ddp / f"weights_{r}.pt") for r in (0, 1))
    assert w0.keys() == w1.keys()
    for key in w0:  # (a) the same weights on both ranks (up to the last bits of gloo's float sums)
        torch.testing.assert_close(w0[key], w1[key], rtol=0, atol=1e-6, msg=key)

    # (b) the checkpoints geoft wrote: DDP training == single-process training on the same global batch
    runs_dir = ddp.parent / "runs"
    ckpt_ddp = torch.load(runs_dir / "ddp" / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt_single = torch.load(runs_dir / "single" / "checkpoints" / "last.ckpt", weights_only=False)
    # ModelCheckpoint(save_last=True) refreshes last.ckpt only when a top-k checkpoint is saved, so it may
    # hold an earlier epoch than the final weights: it must be the same epoch in both runs.
    assert (ckpt_ddp["epoch"], ckpt_ddp["global_step"]) == (ckpt_single["epoch"], ckpt_single["global_step"])
    sd_ddp, sd_single = ckpt_ddp["state_dict"], ckpt_single["state_dict"]
    assert sd_ddp.keys() == sd_single.keys() == w0.keys()
    for key in sd_ddp:
        torch.testing.assert_close(sd_ddp[key], sd_single[key], rtol=1e-4, atol=1e-4, msg=key)
    ws = torch.load(single / "weights_0.pt")
    for key in ws:  # and the final weights (after all EPOCHS steps) too
        torch.testing.assert_close(w0[key], ws[key], rtol=1e-4, atol=1e-4, msg=key)

    # validation metrics equal the single-process run, and both ranks report the same synced values
    ms = json.loads((single / "metrics_0.json").read_text())["metrics"]
    for rank in ranks:
        m = rank["metrics"]
        for key in VAL_KEYS:
            assert key in m, sorted(m)
            assert m[key] == pytest.approx(ms[key], rel=1e-4, abs=1e-5), key
    # everything synced is equal on both ranks; only the per-step train/loss is rank-local by design
    synced = [{k: v for k, v in r["metrics"].items() if k != "train/loss"} for r in ranks]
    assert len(synced[0]) > 10 and synced[0] == synced[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_fit_writes_run_files_once(runs: tuple[Path, Path]) -> None:
    single, ddp = runs
    runs_dir = ddp.parent / "runs"
    folders = {p.name for p in runs_dir.iterdir()}
    assert {"ddp", "single"} <= folders <= {"ddp", "single", "predict_ddp"}, folders  # no per-rank run folder
    names = {}
    for run in ("single", "ddp"):
        names[run] = sorted(p.name for p in (runs_dir / run / "checkpoints").iterdir())
        assert "last.ckpt" in names[run] and not any(n.endswith(".tmp") for n in names[run]), names[run]
    assert names["ddp"] == names["single"]  # same checkpoints, none written twice under another name
    lines = {run: _jsonl(runs_dir / run / "metrics.jsonl") for run in ("single", "ddp")}
    for run, events in lines.items():
        assert [e["event"] for e in events].count("start") == 1, run
        assert [e["event"] for e in events].count("end") == 1, run
    # rank 1 writes no lines: the DDP file has as many lines of each kind as the single-process one
    kinds = {run: sorted((e["event"], e.get("stage") or "") for e in ev) for run, ev in lines.items()}
    assert kinds["ddp"] == kinds["single"]
    val_ddp = [e["metrics"] for e in lines["ddp"] if e.get("stage") == "val"]
    val_single = [e["metrics"] for e in lines["single"] if e.get("stage") == "val"]
    assert len(val_ddp) == EPOCHS
    for md, ms in zip(val_ddp, val_single):
        assert md["val/loss"] == pytest.approx(ms["val/loss"], rel=1e-4, abs=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_predict_writes_each_file_once(workspace: Path, runs: tuple[Path, Path]) -> None:
    ckpt = workspace / "runs" / "ddp" / "checkpoints" / "last.ckpt"
    out = workspace / "preds"
    args = ["predict", "-c", "config.yaml", "--ckpt_path", str(ckpt), "--run_name", "predict_ddp"]
    args += ["--trainer.devices", "2", "--trainer.strategy", "ddp", "--data.init_args.batch_size", "1"]
    _geoft(workspace, *args, "--predict_output_dir", str(out))
    inputs = sorted(p.stem for p in (workspace / "data" / "val" / "images").glob("*.tif"))
    assert len(inputs) == 4
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{stem}_pred.tif" for stem in inputs)  # once each, no temp or per-rank files
