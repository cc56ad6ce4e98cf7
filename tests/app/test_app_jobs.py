"""Job runner: detached workers, queueing, stop/resume, failures, SIGKILL -> interrupted."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from geoft.app.jobs import JobRunner
from geoft.app.processes import pid_alive
from geoft.app.run_store import CANCELLED, COMPLETED, FAILED, INTERRUPTED, QUEUED, RUNNING, STOPPED, RunStore

# A stand-in for `geoft fit`: writes metrics.jsonl like the trainer, can sleep and can fail.
FAKE_TRAIN = r"""
import json, os, sys, time
seconds = float(sys.argv[1]); fail = sys.argv[2] == "fail"
with open("metrics.jsonl", "a") as fh:
    for epoch in range(3):
        fh.write(json.dumps({"epoch": epoch, "step": epoch, "train/loss": 1.0 / (epoch + 1), "val/mIoU": 0.2 * epoch}) + "\n")
        fh.flush()
        time.sleep(seconds / 3)
print("ckpt" , flush=True)
open("last.ckpt", "w").write("x")
if fail:
    raise ValueError("bands mismatch: the config asks for 6 bands, the data has 4")
"""


def fake_command(seconds: float, fail: bool = False):
    def factory(run):
        argv = [sys.executable, "-c", FAKE_TRAIN, str(seconds), "fail" if fail else "ok"]
        return argv + (["--resume", run.resume_ckpt] if run.resume_ckpt else [])

    return factory


@pytest.fixture
def runner(tmp_path: Path):
    store = RunStore(tmp_path / "runs" / "runs.sqlite")
    yield JobRunner(store, tmp_path / "runs", command_factory=fake_command(1.5), stop_grace_s=5)
    for run in store.list(status=RUNNING):
        if run.pid and pid_alive(run.pid, run.pid_start):
            os.killpg(run.pid, signal.SIGKILL)


CONFIG = {"trainer": {"accelerator": "cpu", "max_epochs": 3}}


def test_job_completes_and_records_best_metrics(runner: JobRunner):
    run = runner.submit(CONFIG, "ok", device="cpu")
    assert run.status == RUNNING and run.pid
    done = runner.wait(run.id, timeout_s=60)
    assert done.status == COMPLETED, done.error
    assert done.exit_code == 0
    assert done.best_metrics == {"val/mIoU": pytest.approx(0.4)}
    submitted = done.submitted_config_path.read_text()
    assert f"run_name: {run.id}" in submitted and f"default_root_dir: {done.run_dir.parent}" in submitted


def test_two_simultaneous_starts_one_runs_one_queued(tmp_path: Path):
    """Two sessions (threads with their own runners) submit at the same instant."""
    store_path = tmp_path / "runs" / "runs.sqlite"
    RunStore(store_path)
    barrier = threading.Barrier(2)
    ids: list[str] = []

    def session(name: str) -> None:
        runner = JobRunner(RunStore(store_path), tmp_path / "runs", command_factory=fake_command(2.0))
        barrier.wait()
        ids.append(runner.submit(CONFIG, name, device="cpu").id)

    threads = [threading.Thread(target=session, args=(f"s{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = RunStore(store_path)
    statuses = sorted(store.get(i).status for i in ids)
    assert statuses == [QUEUED, RUNNING]
    # the finishing worker starts the queued job by itself (no session needed)
    runner = JobRunner(store, tmp_path / "runs")
    for run_id in ids:
        assert runner.wait(run_id, timeout_s=60).status == COMPLETED


def test_different_devices_run_together(runner: JobRunner):
    a = runner.submit(CONFIG, "a", device="cpu")
    b = runner.submit(CONFIG, "b", device="cuda:0")
    assert a.status == RUNNING and b.status == RUNNING


def test_crashed_job_is_failed_with_its_error(tmp_path: Path):
    store = RunStore(tmp_path / "runs.sqlite")
    runner = JobRunner(store, tmp_path, command_factory=fake_command(0.1, fail=True))
    run = runner.wait(runner.submit(CONFIG, "bad", device="cpu").id, timeout_s=60)
    assert run.status == FAILED
    assert run.exit_code == 1
    assert run.error.startswith("ValueError: bands mismatch")


def test_sigkill_marks_interrupted_and_resume_uses_checkpoint(runner: JobRunner):
    run = runner.submit(CONFIG, "victim", device="cpu")
    time.sleep(0.5)
    os.killpg(run.pid, signal.SIGKILL)  # the worker and its training child die without a word
    deadline = time.time() + 10
    while pid_alive(run.pid, run.pid_start) and time.time() < deadline:
        time.sleep(0.05)
    assert runner.reconcile() == [run.id]
    killed = runner.store.get(run.id)
    assert killed.status == INTERRUPTED
    assert "disappeared" in killed.error
    (killed.run_dir / "last.ckpt").write_text("x")
    resumed = runner.resume(run.id)
    assert resumed.status == RUNNING
    assert resumed.resume_ckpt.endswith("last.ckpt")
    assert "--resume" in (resumed.run_dir / "job.json").read_text()
    assert runner.wait(run.id, timeout_s=60).status == COMPLETED


def test_stop_running_and_cancel_queued(runner: JobRunner):
    runner.command_factory = fake_command(30.0)
    first = runner.submit(CONFIG, "long", device="cpu")
    second = runner.submit(CONFIG, "waiting", device="cpu")
    assert second.status == QUEUED
    assert runner.stop(second.id) == CANCELLED
    time.sleep(0.3)
    assert runner.stop(first.id) == "stopping"
    stopped = runner.wait(first.id, timeout_s=30)
    assert stopped.status == STOPPED
    assert runner.store.get(second.id).status == CANCELLED


def test_delete_refuses_active_and_removes_finished(runner: JobRunner):
    run = runner.submit(CONFIG, "x", device="cpu")
    with pytest.raises(Exception, match="stop it before deleting"):
        runner.delete(run.id)
    runner.wait(run.id, timeout_s=60)
    runner.delete(run.id)
    assert not run.run_dir.exists()
    assert runner.store.list() == []


def test_submit_refuses_foreign_class_paths(runner: JobRunner):
    from geoft.errors import ConfigError

    bad = {"model": {"class_path": "os.system", "init_args": {"command": "echo hi"}}}
    with pytest.raises(ConfigError, match="os.system"):
        runner.submit(bad, "evil", device="cpu")
    assert runner.store.list() == []


# A stand-in for `geoft fit` that fails inside training: RunEvents' `end` event says why.
FAIL_WITH_END_EVENT = r"""
import json, sys
with open("metrics.jsonl", "a") as fh:
    fh.write(json.dumps({"event": "start", "stage": "fit"}) + "\n")
    fh.write(json.dumps({"event": "end", "stage": "fit", "status": "failed",
                         "error": "DataError: label x.tif is missing Hint: run validate-data",
                         "message": "label x.tif is missing\nHint: run validate-data"}) + "\n")
print("UserWarning: noise after the error", flush=True)
sys.exit(2)
"""


def test_failed_job_reports_the_end_event_not_the_log(tmp_path: Path):
    store = RunStore(tmp_path / "runs" / "runs.sqlite")
    runner = JobRunner(
        store, tmp_path / "runs", command_factory=lambda run: [sys.executable, "-c", FAIL_WITH_END_EVENT]
    )
    done = runner.wait(runner.submit(CONFIG, "bad", device="cpu").id, timeout_s=60)
    assert done.status == FAILED and done.exit_code == 2
    assert done.error == "geoft: error: label x.tif is missing\nHint: run validate-data"


def test_the_app_names_the_run_folder_in_the_fit_command(tmp_path: Path):
    from geoft.app.jobs import geoft_fit_command

    store = RunStore(tmp_path / "runs.sqlite")
    run = store.add("r1", "r1", tmp_path / "r1", "cpu")
    argv = geoft_fit_command(run)
    assert argv[argv.index("--run_dir") + 1] == str(tmp_path / "r1")
