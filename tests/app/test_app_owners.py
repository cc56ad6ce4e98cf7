"""A shared server: run owners (stop/resume/delete by owner or admin only), the per-user job limit,
and the owner column added to run stores of older geoft versions."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from geoft.app.auth import clean_user_name, oidc_identity
from geoft.app.jobs import JobRunner
from geoft.app.owners import Actor, may_control
from geoft.app.processes import pid_alive, process_start_ticks
from geoft.app.run_store import CANCELLED, COMPLETED, QUEUED, RUNNING, STOPPED, RunStore
from geoft.app.settings import load_settings
from geoft.errors import ConfigError, NotAllowedError

CONFIG = {"trainer": {"accelerator": "cpu", "max_epochs": 1}}
SLEEP = "import sys, time; time.sleep(float(sys.argv[1]))"
ADMINS = ("Carol@Example.org",)


def sleeping(seconds: float):
    """A stand-in for `geoft fit` that trains for ``seconds``."""
    return lambda run: [sys.executable, "-c", SLEEP, str(seconds)]


def runner_for(store: RunStore, user: str | None, **kwargs) -> JobRunner:
    return JobRunner(
        store, store.path.parent, command_factory=sleeping(0.2), actor=Actor.of(user, ADMINS), **kwargs
    )


def occupy(store: RunStore, device: str, owner: str | None = None) -> str:
    """A row `running` on ``device`` whose process (this test) is alive: the device stays busy and
    nothing is launched. Never stopped by the tests (it would signal the test itself)."""
    run_id = f"blocker-{device}"
    store.add(run_id, run_id, store.path.parent / run_id, device, status=RUNNING, owner=owner)
    store.update(run_id, pid=os.getpid(), pid_start=process_start_ticks(os.getpid()))
    return run_id


@pytest.fixture
def store(tmp_path: Path):
    store = RunStore(tmp_path / "runs" / "runs.sqlite")
    yield store
    for run in store.list(status=RUNNING):
        if run.pid and run.pid != os.getpid() and pid_alive(run.pid, run.pid_start):
            os.killpg(run.pid, signal.SIGKILL)


def test_only_the_owner_or_an_admin_may_stop_resume_or_delete(store: RunStore):
    occupy(store, "cpu")  # alice's run stays queued behind it
    alice, bob, carol = (runner_for(store, u) for u in ("alice", "bob", "carol@example.org"))
    run = alice.submit(CONFIG, "alices", device="cpu")
    assert run.status == QUEUED and run.owner == "alice"
    assert bob.store.get(run.id).owner == "alice"  # everyone sees every run, with its owner

    for action in (bob.stop, bob.resume, bob.delete):
        with pytest.raises(NotAllowedError, match="belongs to alice, and only its owner or an admin"):
            action(run.id)
    assert store.get(run.id).status == QUEUED and run.run_dir.is_dir()  # nothing happened

    assert carol.stop(run.id) == CANCELLED  # an admin (names compared case-insensitively)
    store.update(run.id, status=STOPPED)
    assert alice.resume(run.id).status == QUEUED  # the owner; it waits for the busy cpu
    assert alice.stop(run.id) == CANCELLED
    carol.delete(run.id)
    assert not run.run_dir.exists()
    with pytest.raises(ConfigError, match="no run with id"):
        store.get(run.id)


def test_runs_without_owner_need_an_admin_and_single_user_mode_allows_all(store: RunStore):
    occupy(store, "cpu")
    single = runner_for(store, None)
    run = single.submit(CONFIG, "from-before-login", device="cpu")
    assert run.owner is None
    with pytest.raises(NotAllowedError, match="no recorded owner"):
        runner_for(store, "bob").stop(run.id)
    assert may_control(Actor.of("carol@example.org", ADMINS), run)
    owned = runner_for(store, "alice").submit(CONFIG, "alices", device="cpu")
    assert single.stop(owned.id) == CANCELLED  # no login: behaviour as before owners existed
    assert single.stop(run.id) == CANCELLED


def _wait_for(store: RunStore, run_id: str, status: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while store.get(run_id).status != status:
        assert time.monotonic() < deadline, f"{run_id} is {store.get(run_id).status}, not {status}"
        time.sleep(0.05)


def test_third_job_of_a_user_waits_for_the_limit_while_another_user_runs(store: RunStore):
    alice = runner_for(store, "alice", max_jobs_per_user=2)
    alice.command_factory = sleeping(60)
    first, second = (alice.submit(CONFIG, f"a{i}", device=f"dev{i}") for i in (1, 2))
    third = alice.submit(CONFIG, "a3", device="dev3")  # its device is free, but alice runs 2 already
    bob = runner_for(store, "bob", max_jobs_per_user=2)
    bobs = bob.submit(CONFIG, "b1", device="dev4")
    assert [store.get(r.id).status for r in (first, second, third, bobs)] == [
        RUNNING,
        RUNNING,
        QUEUED,
        RUNNING,
    ]
    reason = bob.queue_reason(third.id)
    assert "alice already has 2 jobs running" in reason and "GEOFT_MAX_JOBS_PER_USER=2" in reason
    assert alice.dispatch() == []  # dispatching again keeps the limit

    # bob's worker, when his job ends, dispatches the queue itself: with the same limit
    assert bob.wait(bobs.id, timeout_s=60).status == COMPLETED
    deadline = time.monotonic() + 30
    while pid_alive(bobs.pid, bobs.pid_start) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(bobs.pid, bobs.pid_start)
    assert store.get(third.id).status == QUEUED
    alice.stop(first.id)  # one of alice's ends: its worker starts her third
    _wait_for(store, third.id, RUNNING)
    assert store.get(first.id).status == STOPPED and store.get(second.id).status == RUNNING


def test_queued_run_says_which_run_holds_its_device(store: RunStore):
    occupy(store, "cuda:0", owner="bob")
    run = runner_for(store, "alice").submit(CONFIG, "waits", device="cuda:0")
    reason = runner_for(store, "alice").queue_reason(run.id)
    assert "device `cuda:0` is busy with run 'blocker-cuda:0' of bob" in reason


def test_an_old_store_gains_the_owner_column_and_keeps_its_runs(tmp_path: Path):
    path = tmp_path / "runs.sqlite"
    old = sqlite3.connect(path)  # the schema before owners existed
    old.executescript(
        """CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
        device TEXT NOT NULL, run_dir TEXT NOT NULL, created REAL NOT NULL, started REAL, finished REAL,
        pid INTEGER, pid_start INTEGER, exit_code INTEGER, error TEXT, resume_ckpt TEXT,
        stop_requested INTEGER NOT NULL DEFAULT 0, best_metrics TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '[]', attempts INTEGER NOT NULL DEFAULT 0);
        INSERT INTO runs (id, name, status, device, run_dir, created, best_metrics)
        VALUES ('old-1', 'old', 'completed', 'cpu', '/runs/old-1', 1.0, '{"val/mIoU": 0.5}');"""
    )
    old.commit()
    old.close()

    store = RunStore(path)
    legacy = store.get("old-1")
    assert legacy.owner is None and legacy.best_metrics == {"val/mIoU": 0.5} and legacy.status == COMPLETED
    store.add("new-1", "new", tmp_path / "new-1", "cpu", owner="alice")
    assert store.get("new-1").owner == "alice"
    again = RunStore(path)  # opening a migrated store changes nothing
    assert [r.id for r in again.list()] == ["new-1", "old-1"]
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(runs)")]
    assert columns.count("owner") == 1


def test_settings_and_identities():
    env = {
        "GEOFT_HOME": "/tmp/geoft-x",
        "GEOFT_ADMINS": " carol@x.org, dave ,",
        "GEOFT_MAX_JOBS_PER_USER": "2",
    }
    settings = load_settings(env)
    assert settings.admins == ("carol@x.org", "dave") and settings.max_jobs_per_user == 2
    assert load_settings({"GEOFT_HOME": "/tmp/geoft-x"}).max_jobs_per_user is None
    with pytest.raises(ConfigError, match="GEOFT_MAX_JOBS_PER_USER"):
        load_settings({**env, "GEOFT_MAX_JOBS_PER_USER": "0"})
    assert clean_user_name("  Ada   Lovelace ") == "Ada Lovelace"
    assert (
        clean_user_name("") is None
        and clean_user_name("x" * 81) is None
        and clean_user_name("a\x00b") is None
    )
    assert oidc_identity({"email": "a@x.org", "name": "A"}) == "a@x.org"
    assert oidc_identity({"email": "", "sub": "123"}) == "123"
    assert oidc_identity({"is_logged_in": True}) is None


def test_runs_page_shows_the_owner_and_refuses_another_users_stop(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
    monkeypatch.setenv("GEOFT_APP_PASSWORD", "s3cret")
    store = RunStore(home / "runs" / "runs.sqlite")
    occupy(store, "cpu")
    run = runner_for(store, "alice").submit(CONFIG, "alices", device="cpu")

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "pages/4_Runs.py"), default_timeout=60)
    at.session_state["geoft_authenticated"] = True
    at.session_state["geoft_user"] = "bob"
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert dict(zip(table["id"], table["owner"]))[run.id] == "alice"
    captions = "\n".join(str(c.value) for c in at.caption)
    assert "Only alice or an admin may stop, resume or delete this run." in captions
    assert "Queued: device `cpu` is busy with run 'blocker-cpu'" in "\n".join(str(i.value) for i in at.info)
    at.button(key=f"runs-stop-{run.id}").click().run()
    errors = "\n".join(str(e.value) for e in at.error)
    assert "belongs to alice" in errors and "GEOFT\\_ADMINS" in errors
    assert store.get(run.id).status == QUEUED
