"""Sweeps in the app: the space form, sweep jobs in the queue, the Runs page's trials, chart and best config."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from geoft.app.chip_gallery import chip_mean_iou, worst_chips
from geoft.app.jobs import JobRunner, job_command
from geoft.app.owners import Actor
from geoft.app.processes import pid_alive, process_start_ticks
from geoft.app.run_store import COMPLETED, QUEUED, RUNNING, STOPPED, RunStore
from geoft.app.run_views import confusion_long
from geoft.app.sweep_command import is_sweep, journal_path
from geoft.app.sweep_jobs import (
    BATCH_SIZE,
    FREEZE_BACKBONE,
    LR,
    SpaceForm,
    checked_space,
    submit_sweep,
)
from geoft.app.sweep_results import best_config, load_results, parallel_frame
from geoft.errors import ConfigError
from geoft.sweeps.study import open_storage

REPO = Path(__file__).resolve().parents[2]
AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def _config(root: Path, tiny_demo_workspace) -> dict:
    tiny_demo_workspace(root, {"max_epochs": 1, "accelerator": "cpu"}, absolute_roots=True)
    return yaml.safe_load((root / "config.yaml").read_text())


def _store(home: Path) -> RunStore:
    return RunStore(home / "runs" / "runs.sqlite")


def _occupy_cpu(store: RunStore, home: Path) -> None:
    """A running row on the cpu device (this test process), so what the pages queue stays queued."""
    (home / "runs" / "blocker").mkdir(parents=True)
    store.add("blocker", "blocker", home / "runs" / "blocker", "cpu", status=RUNNING)
    store.update("blocker", pid=os.getpid(), pid_start=process_start_ticks(os.getpid()))


def test_space_form_gives_the_space_file_of_the_cli():
    space = SpaceForm(batch_sizes="2, 4", search_freeze_backbone=True).space()
    assert space[LR] == {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}
    assert space[BATCH_SIZE] == {"type": "categorical", "choices": [2, 4]}
    assert space[FREEZE_BACKBONE]["choices"] == [False, True]
    assert "model.init_args.model_args.backbone" not in space  # empty field: not searched
    with pytest.raises(ConfigError, match="batch sizes: 'four'"):
        SpaceForm(batch_sizes="2, four").space()


def test_bad_space_is_refused_with_the_cli_checks(tmp_path: Path, tiny_demo_workspace):
    config = _config(tmp_path, tiny_demo_workspace)
    with pytest.raises(ConfigError, match=r"low \(0.1\) must be below high"):
        checked_space(SpaceForm(lr_low=0.1, lr_high=0.01).space(), config)
    with pytest.raises(ConfigError, match="did you mean lr"):
        checked_space({"model.init_args.lrr": {"type": "float", "low": 0.1, "high": 1.0}}, config)
    assert [p.key for p in checked_space(SpaceForm().space(), config)] == [LR]


def _finished_sweep(home: Path, config: dict) -> str:
    """A sweep job whose study (a real journal) holds two complete trials and a pruned one (queued
    behind :func:`_occupy_cpu`, then marked done)."""
    store = _store(home)
    run = submit_sweep(JobRunner(store, home / "runs"), config, SpaceForm(batch_sizes="2, 4").space(), 3, "s")
    store.update(run.id, status=COMPLETED)
    run = store.get(run.id)
    study = optuna.create_study(
        study_name=run.id, storage=open_storage(str(journal_path(run))), direction="minimize"
    )
    lr = optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)
    batch = optuna.distributions.CategoricalDistribution([2, 4])
    for lr_value, batch_value, loss in ((1e-3, 2, 0.8), (1e-4, 4, 0.3)):
        study.add_trial(
            optuna.trial.create_trial(
                params={LR: lr_value, BATCH_SIZE: batch_value},
                distributions={LR: lr, BATCH_SIZE: batch},
                value=loss,
            )
        )
    study.add_trial(
        optuna.trial.create_trial(
            params={LR: 1e-2, BATCH_SIZE: 2},
            distributions={LR: lr, BATCH_SIZE: batch},
            state=optuna.trial.TrialState.PRUNED,
        )
    )
    return run.id


def test_results_best_config_and_parallel_axes(home: Path, tmp_path: Path, tiny_demo_workspace):
    _occupy_cpu(_store(home), home)
    run = _store(home).get(_finished_sweep(home, _config(tmp_path, tiny_demo_workspace)))
    results = load_results(run)
    assert [t.state for t in results.trials] == ["complete", "complete", "pruned"]
    assert results.best.number == 1
    config = best_config(run, results)
    assert config["model"]["init_args"]["lr"] == 1e-4 and config["data"]["init_args"]["batch_size"] == 4
    frame = parallel_frame(results)
    assert list(dict.fromkeys(frame["axis"])) == ["lr", "batch_size", "objective"]
    assert len(frame) == 2 * 3  # the pruned trial has no objective: not drawn
    lows = frame[frame["trial"] == 1].set_index("axis")["position"]
    assert lows["lr"] == 0.0 and lows["objective"] == 0.0 and lows["batch_size"] == 1.0


def test_sweep_job_runs_geoft_sweep_on_its_folder(home: Path, tmp_path: Path, tiny_demo_workspace):
    store = _store(home)
    _occupy_cpu(store, home)
    runner = JobRunner(store, home / "runs")
    run = submit_sweep(runner, _config(tmp_path, tiny_demo_workspace), SpaceForm().space(), 3, "s", 1)
    assert run.status == QUEUED and is_sweep(run)
    argv = job_command(run)
    assert argv[3:5] == ["sweep", "-c"] and argv[argv.index("--trials") + 1] == "3"
    assert argv[argv.index("--study_name") + 1] == run.id
    assert yaml.safe_load((run.run_dir / "space.yaml").read_text()) == SpaceForm().space()
    assert "busy" in runner.queue_reason(run.id)


def test_train_page_queues_a_sweep_and_refuses_a_bad_space(home: Path, tmp_path: Path, tiny_demo_workspace):
    store = _store(home)
    _occupy_cpu(store, home)
    at = AppTest.from_file(str(REPO / "pages/3_Train.py"), default_timeout=60)
    at.session_state["geoft_config"] = _config(home / "data" / "ws", tiny_demo_workspace)
    at.run()
    at.number_input(key="sweep_lr_low").set_value(0.1)
    at.number_input(key="sweep_lr_high").set_value(0.01)
    next(b for b in at.button if b.label == "Start sweep").click().run()
    assert not at.exception
    assert "must be below high" in "\n".join(e.value for e in at.error)
    assert [r.id for r in store.list()] == ["blocker"]
    at.number_input(key="sweep_lr_low").set_value(1e-4)
    at.text_input(key="sweep_batch_sizes").input("2, 4")
    at.number_input(key="sweep_trials").set_value(3)
    next(b for b in at.button if b.label == "Start sweep").click().run()
    assert not at.exception, at.exception
    sweep = next(r for r in store.list() if r.id != "blocker")
    assert is_sweep(sweep) and sweep.status == QUEUED
    assert yaml.safe_load((sweep.run_dir / "space.yaml").read_text())[BATCH_SIZE]["choices"] == [2, 4]


def test_runs_page_shows_trials_and_queues_the_best_config(home: Path, tmp_path: Path, tiny_demo_workspace):
    store = _store(home)
    _occupy_cpu(store, home)
    sweep_id = _finished_sweep(home, _config(tmp_path, tiny_demo_workspace))
    at = AppTest.from_file(str(REPO / "pages/4_Runs.py"), default_timeout=60)
    at.session_state["runs_detail"] = sweep_id
    at.run()
    assert not at.exception, at.exception
    trials = next(d.value for d in at.dataframe if "objective" in d.value.columns)
    assert list(trials["trial"]) == [0, 1, 2] and list(trials["state"])[-1] == "pruned"
    assert any('"position"' in c.proto.spec for c in at.get("vega_lite_chart"))  # parallel coordinates
    assert "Best: trial 1" in "\n".join(m.value for m in at.markdown)
    shown = [yaml.safe_load(c.value) for c in at.code if c.language == "yaml"]
    assert any(
        c["model"]["init_args"]["lr"] == 1e-4 and c["data"]["init_args"]["batch_size"] == 4 for c in shown
    )
    next(b for b in at.button if b.label == "Train the best config").click().run()
    assert not at.exception, at.exception
    full = next(r for r in store.list() if r.id not in ("blocker", sweep_id))
    assert full.status == QUEUED and not is_sweep(full)
    submitted = yaml.safe_load(full.submitted_config_path.read_text())
    assert submitted["model"]["init_args"]["lr"] == 1e-4 and submitted["data"]["init_args"]["batch_size"] == 4


def test_queue_runs_a_real_sweep_of_three_trials(home: Path, tmp_path: Path, tiny_demo_workspace):
    store = _store(home)
    runner = JobRunner(store, home / "runs")
    space = SpaceForm(lr_low=1e-4, lr_high=1e-3, batch_sizes="1, 2").space()
    config = _config(home / "data" / "ws", tiny_demo_workspace)  # inside the app's data root
    run = submit_sweep(runner, config, space, 3, "e2e", max_epochs=1)
    try:
        done = runner.wait(run.id, timeout_s=600)
    finally:
        live = store.get(run.id)
        if live.status == RUNNING and live.pid and pid_alive(live.pid, live.pid_start):
            os.killpg(live.pid, signal.SIGKILL)
    assert done.status == COMPLETED, done.error
    results = load_results(done)
    assert len(results.trials) == 3 and results.best is not None
    assert all(t.run_dir and t.run_dir.parent == done.run_dir for t in results.trials)
    assert (done.run_dir / "best.yaml").is_file()
    at = AppTest.from_file(str(REPO / "pages/4_Runs.py"), default_timeout=60)
    at.session_state["runs_detail"] = run.id
    at.run()
    assert not at.exception, at.exception
    trials = next(d.value for d in at.dataframe if "objective" in d.value.columns)
    assert len(trials) == 3
    assert f"Best: trial {results.best.number}" in "\n".join(m.value for m in at.markdown)

    # the worst validation chips of one trial, predicted with its best checkpoint
    trial = results.trials[0]
    store.add("trial0", "trial 0", trial.run_dir, "cpu", status=COMPLETED)
    chips = worst_chips(store.get("trial0"), [home / "data", home / "runs"])
    assert len(chips) == 2 and chips[0].mean_iou <= chips[1].mean_iou  # the 2 val chips, worst first
    assert all(c.prediction.is_file() and c.prediction.parent.parent == trial.run_dir for c in chips)
    assert len(worst_chips(store.get("trial0"), [home / "data", home / "runs"], max_chips=1)) == 1
    at = AppTest.from_file(str(REPO / "pages/4_Runs.py"), default_timeout=120)
    at.session_state["runs_detail"] = "trial0"
    at.run()
    heatmaps = [c for c in at.get("vega_lite_chart") if '"rect"' in c.proto.spec]  # the confusion matrix
    assert len(heatmaps) == 1 and '"share"' in heatmaps[0].proto.spec
    next(b for b in at.button if b.label == "Find the worst validation chips").click().run()
    assert not at.exception, at.exception
    assert f"{chips[0].image.name}** · mean IoU {chips[0].mean_iou:.3f}" in "\n".join(
        m.value for m in at.markdown
    )
    next(b for b in at.button if b.key == "runs_open_chip_0").click().run()
    assert at.session_state["pred_chip"] == chips[0].predict_index
    predict = AppTest.from_file(str(REPO / "pages/5_Predict.py"), default_timeout=120)
    for key in ("pred_run", "pred_source", "pred_chip"):  # what the switch to the Predict page carries
        predict.session_state[key] = at.session_state[key]
    predict.run()
    assert not predict.exception, predict.exception
    assert predict.selectbox(key="pred_run").value.id == "trial0"
    assert predict.selectbox(key="pred_chip").value == chips[0].predict_index


def test_chip_mean_iou_scores_classes_in_label_or_prediction():
    truth = np.array([[0, 0], [1, 255]])
    predicted = np.array([[0, 1], [1, 2]])
    # class 0: 1/2, class 1: 1/2, class 2 in neither (the 255 pixel is ignored): mean 0.5
    assert chip_mean_iou(truth, predicted, 3, ignore_index=255) == pytest.approx(0.5)
    assert chip_mean_iou(truth, truth, 3, ignore_index=255) == 1.0
    # without the ignore value 255 is no class either, and the pixel is left out
    assert chip_mean_iou(truth, predicted, 3, ignore_index=None) == pytest.approx(0.5)


def test_confusion_long_shares_of_the_true_class():
    frame = confusion_long([[3, 1], [0, 0]], ["land", "water"])
    row = frame.set_index(["true", "predicted"])
    assert row.loc[("land", "water"), "share"] == 0.25 and row.loc[("water", "water"), "share"] == 0.0
    assert row.loc[("land", "land"), "pixels"] == 3


def test_stop_stops_the_sweep_not_only_its_trial(home: Path, tiny_demo_workspace):
    store = _store(home)
    runner = JobRunner(store, home / "runs", stop_grace_s=120)  # no kill: the study itself must end
    config = _config(home / "data" / "ws", tiny_demo_workspace)
    run = submit_sweep(runner, config, SpaceForm().space(), 3, "stop", max_epochs=500)
    try:
        deadline = time.monotonic() + 300
        while not any(t.state == "running" for t in load_results(store.get(run.id)).trials):
            assert time.monotonic() < deadline, "the first trial did not start"
            time.sleep(0.5)
        time.sleep(3)  # inside the first trial's epochs
        assert runner.stop(run.id) == "stopping"
        done = runner.wait(run.id, timeout_s=100)
    finally:
        live = store.get(run.id)
        if live.status == RUNNING and live.pid and pid_alive(live.pid, live.pid_start):
            os.killpg(live.pid, signal.SIGKILL)
    assert done.status == STOPPED
    assert [t.state for t in load_results(done).trials] == ["interrupted"]


def test_a_sweep_counts_against_the_per_user_job_limit(home: Path, tmp_path: Path, tiny_demo_workspace):
    store = _store(home)
    (home / "runs" / "ann-job").mkdir(parents=True)
    store.add("ann-job", "ann's run", home / "runs" / "ann-job", "cuda:7", status=RUNNING, owner="ann")
    store.update("ann-job", pid=os.getpid(), pid_start=process_start_ticks(os.getpid()))
    runner = JobRunner(store, home / "runs", actor=Actor.of("ann"), max_jobs_per_user=1)
    run = submit_sweep(runner, _config(tmp_path, tiny_demo_workspace), SpaceForm().space(), 3, "limit")
    assert run.status == QUEUED and run.owner == "ann"  # the cpu is free, but ann runs a job already
    assert "ann already has 1 jobs running" in runner.queue_reason(run.id)
