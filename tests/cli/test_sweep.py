"""``geoft sweep``: Optuna trials as ``geoft fit`` runs on tiny demo data (1 epoch, 32-px chips)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from geoft.cli import main
from geoft.config.loading import load_config
from geoft.runs.folder import RunDir
from geoft.sweeps.space import load_space
from geoft.sweeps.study import Monitor, Sweep, open_storage

REPO = Path(__file__).resolve().parents[2]
SPACE = {
    "model.init_args.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
    "data.init_args.batch_size": {"type": "categorical", "choices": [2, 4]},
    "model.init_args.freeze_decoder": {"type": "categorical", "choices": [True, False]},
    "model.init_args.model_args.peft_config.peft_config_kwargs.r": {
        "type": "int",
        "low": 2,
        "high": 4,
        "step": 2,
    },
}


@pytest.fixture
def workspace(tmp_path: Path, tiny_demo_workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    tiny_demo_workspace(tmp_path, {"max_epochs": 1})
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE, sort_keys=False))
    monkeypatch.chdir(tmp_path)  # the config's data roots and runs/ are relative to it
    return tmp_path


def _sweep_args(*extra: str) -> list[str]:
    return ["sweep", "-c", "config.yaml", "--space", "space.yaml", "--study_name", "s", *extra]


def _study(root: Path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=open_storage(str(root / "runs" / "sweeps.journal")))


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("model.init_args.lrr", "did you mean lr"),
        ("model.init_args.model_args.backbon", "did you mean model.init_args.model_args.backbone"),
        ("modle.init_args.lr", "did you mean model"),
    ],
)
def test_bad_space_key_is_one_error_before_any_trial(
    workspace: Path, key: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "space.yaml").write_text(yaml.safe_dump({key: {"type": "float", "low": 0.1, "high": 1.0}}))
    assert main(_sweep_args("--trials", "1")) == 2
    err = capsys.readouterr().err
    assert err.startswith("geoft: error: space file space.yaml: ") and said in err
    assert "Traceback" not in err
    assert not (workspace / "runs").exists()  # no study, no trial folder


def test_bad_space_field_names_the_key(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "space.yaml").write_text(
        yaml.safe_dump({"model.init_args.lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}})
    )
    assert main(_sweep_args("--trials", "1")) == 2
    assert "model.init_args.lr: log: true needs low > 0" in capsys.readouterr().err


def test_sweep_resumes_the_study_and_writes_a_best_config(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_sweep_args("--trials", "1", "--seed", "0")) == 0
    assert len(_study(workspace).trials) == 1
    assert main(_sweep_args("--trials", "1", "--seed", "1")) == 0  # a restart continues the same study
    study = _study(workspace)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert study.direction == optuna.study.StudyDirection.MINIMIZE  # val/loss, the task's monitor

    best = study.best_trial
    run = Path(best.user_attrs["run_dir"])
    assert run == (workspace / "runs" / "s" / f"trial-{best.number:04d}").resolve()
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    submitted = load_config(run / "submitted_config.yaml")
    assert submitted["model"]["init_args"]["lr"] == best.params["model.init_args.lr"]

    out = capsys.readouterr().out
    assert f"best trial {best.number}: {best.value}" in out
    config = load_config(workspace / "runs" / "s" / "best.yaml")
    init = config["model"]["init_args"]
    assert init["lr"] == best.params["model.init_args.lr"]
    assert init["freeze_decoder"] == best.params["model.init_args.freeze_decoder"]
    rank = best.params["model.init_args.model_args.peft_config.peft_config_kwargs.r"]
    assert init["model_args"]["peft_config"]["peft_config_kwargs"]["r"] == rank
    assert config["data"]["init_args"]["batch_size"] == best.params["data.init_args.batch_size"]
    assert config["trainer"]["default_root_dir"] == "runs"  # a full fit goes beside the other runs


def test_a_trial_reporting_a_bad_value_is_pruned(workspace: Path) -> None:
    config = load_config(workspace / "config.yaml")
    sweep = Sweep(
        config, load_space(workspace / "space.yaml"), "pruned", "sqlite:///" + str(workspace / "p.db")
    )
    # val/loss is never below 0: the threshold prunes the trial at its first report
    study = sweep.study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))
    sweep.run(study, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert 0 in trial.intermediate_values  # reported by the Lightning callback after epoch 0's validation
    end = RunDir(Path(trial.user_attrs["run_dir"])).end()
    assert end is not None and end["status"] == "failed" and "TrialPruned" in end["error"]


@pytest.mark.slow
def test_two_workers_share_one_study(workspace: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "geoft.cli", *_sweep_args("--trials", "1", "--pruner", "none")]
    workers = [
        subprocess.Popen(
            command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
    trials = _study(workspace).trials
    assert sorted(t.number for t in trials) == [0, 1]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["run_dir"] for t in trials}) == 2


def test_study_direction_follows_the_checkpoint_monitor() -> None:
    from geoft.sweeps.study import config_monitor

    segmentation = {"model": {"class_path": "geoft.tasks.SemanticSegmentationTask"}}
    assert config_monitor(segmentation).direction == "minimize"
    detection = {"model": {"class_path": "geoft.tasks.ObjectDetectionTask"}}
    assert config_monitor(detection).direction == "maximize"  # mAP
    checkpoint = {"class_path": "ModelCheckpoint", "init_args": {"monitor": "val/mIoU", "mode": "max"}}
    configured = {**segmentation, "trainer": {"callbacks": [checkpoint]}}
    assert config_monitor(configured) == Monitor("val/mIoU", "max")


def test_a_diverging_trial_fails_and_the_sweep_goes_on(workspace: Path) -> None:
    (workspace / "nan.yaml").write_text("model.init_args.lr: {type: categorical, choices: [1.0e+30]}\n")
    config = load_config(workspace / "config.yaml")
    sweep = Sweep(config, load_space(workspace / "nan.yaml"), "nan", str(workspace / "nan.journal"))
    study = sweep.run(sweep.study(), n_trials=2)  # the NaN loss of trial 0 does not stop trial 1
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    end = RunDir(Path(study.trials[1].user_attrs["run_dir"])).end()
    assert end is not None and "NonFiniteLossError" in end["error"]
