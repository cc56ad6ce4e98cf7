"""Training jobs: detached worker processes, one per accelerator at a time (and at most
``max_jobs_per_user`` per logged-in user), the rest queued.

A job is a row in the :class:`~geoft.app.run_store.RunStore` plus a run folder
(:class:`~geoft.runs.RunDir`) holding ``submitted_config.yaml`` and ``job.json`` (the command); the
command names that folder (``--run_dir``), so ``geoft fit`` writes its files beside them. :meth:`JobRunner.dispatch` starts queued jobs on
free devices inside one ``BEGIN IMMEDIATE`` transaction, so when several sessions (or the worker of a
finishing job) dispatch at once exactly one of them starts each job. Workers run in a new session,
so a page reload, a second tab or a Streamlit restart finds them again through the store.

A runner acts for one :class:`~geoft.app.owners.Actor`: the runs it submits are that user's, and it
refuses to stop, resume or delete another user's run unless the actor is an admin.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from geoft.app.config_safety import check_class_paths
from geoft.app.owners import SINGLE_USER, Actor, check_may_control, user_key
from geoft.app.paths import confine
from geoft.app.processes import pid_alive, process_start_ticks, send_signal
from geoft.app.run_store import (
    CANCELLED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    RunRecord,
    RunStore,
    new_run_id,
)
from geoft.app.sweep_command import geoft_sweep_command, is_sweep
from geoft.errors import ConfigError
from geoft.runs.folder import RunDir

CommandFactory = Callable[[RunRecord], list[str]]


def job_command(run: RunRecord) -> list[str]:
    """A sweep job's ``geoft sweep`` (:mod:`geoft.app.sweep_command`), else ``geoft fit``."""
    return geoft_sweep_command(run) if is_sweep(run) else geoft_fit_command(run)


def geoft_fit_command(run: RunRecord) -> list[str]:
    """The same code path as the CLI: ``geoft fit -c submitted_config.yaml --run_dir RUN [--ckpt_path CKPT]``."""
    argv = [sys.executable, "-m", "geoft.cli", "fit", "-c", str(run.submitted_config_path)]
    argv += ["--run_dir", str(run.run_dir)]
    if run.resume_ckpt:
        argv += ["--ckpt_path", run.resume_ckpt]
    return argv


def device_key(config: dict[str, Any]) -> str:
    """Which accelerator a config trains on: ``"cuda:0"``-like for GPUs, ``"cpu"`` otherwise."""
    trainer = config.get("trainer") or {}
    accel = str(trainer.get("accelerator", "auto")).lower()
    if accel in ("cpu",):
        return "cpu"
    if accel in ("gpu", "cuda", "auto"):
        import torch

        if not torch.cuda.is_available():
            if accel == "auto":
                return "cpu"
            raise ConfigError(
                f"trainer.accelerator={accel!r} but no CUDA GPU is available",
                hint="choose the cpu device",
            )
        devices = trainer.get("devices", "auto")
        if isinstance(devices, list) and devices:
            return f"cuda:{devices[0]}"
        return "cuda:0"
    return accel


def run_dataset_root(run: RunRecord) -> Path | None:
    """The dataset folder a run was started from in the app (None for runs from uploaded configs)."""
    try:
        root = json.loads((run.run_dir / "app.json").read_text()).get("dataset_root")
    except (OSError, ValueError):
        return None
    return Path(root) if root else None


def find_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files under a run folder, newest first (:meth:`RunDir.checkpoints`)."""
    return RunDir(run_dir).checkpoints()


def checkpoint_sizes(run_dir: Path) -> list[tuple[Path, int]]:
    """(checkpoint, bytes) newest first, leaving out any the running job removed since it was listed."""
    sized = []
    for path in find_checkpoints(run_dir):
        try:
            sized.append((path, path.stat().st_size))
        except FileNotFoundError:
            continue
    return sized


class JobRunner:
    """Submit, dispatch, stop, resume and delete training jobs.

    Args:
        store: the run store.
        runs_root: folder of run folders (each job's folder is created inside it).
        command_factory: builds a job's command from its record (default: :func:`job_command`).
        python: interpreter that runs the worker.
        stop_grace_s: seconds a stopping job gets before its worker kills it.
        actor: the user this runner acts for (default: single-user mode, no owner, every action allowed).
        max_jobs_per_user: at most this many running jobs per owner (None: no limit); the rest queue.
    """

    def __init__(
        self,
        store: RunStore,
        runs_root: Path,
        command_factory: CommandFactory = job_command,
        python: str = sys.executable,
        stop_grace_s: float = 30.0,
        actor: Actor = SINGLE_USER,
        max_jobs_per_user: int | None = None,
    ) -> None:
        if max_jobs_per_user is not None and max_jobs_per_user < 1:
            raise ConfigError(f"max_jobs_per_user must be at least 1, not {max_jobs_per_user}")
        self.store = store
        self.actor = actor
        self.max_jobs_per_user = max_jobs_per_user
        self.runs_root = Path(runs_root).resolve()
        self.runs_root.mkdir(parents=True, exist_ok=True)
        self.command_factory = command_factory
        self.python = python
        self.stop_grace_s = stop_grace_s

    # -- submitting ---------------------------------------------------------------------------
    def submit(
        self,
        config: dict[str, Any],
        name: str,
        device: str | None = None,
        tags: Sequence[str] = (),
        dispatch: bool = True,
        dataset_root: str | None = None,
        files: Mapping[str, str] | None = None,
    ) -> RunRecord:
        """Write a run folder for ``config`` and queue it; start it at once if its device is free.

        The config's class paths are checked (configs may come from the web). The job's command names
        its run folder (``<runs_root>/<run id>``: resolved config.yaml, metrics.jsonl, checkpoints/);
        ``run_name`` and ``trainer.default_root_dir`` are written into the submitted config too, so that
        running it by hand with ``geoft fit -c`` lands in the same folder. ``files`` (name -> text) are
        written into the folder before the command is frozen (a sweep's space).
        """
        if not isinstance(config, dict):
            raise ConfigError("a training config must be a mapping (YAML dictionary)")
        check_class_paths(config)
        device = device or device_key(config)
        run_id = new_run_id(name)
        run_dir = self.runs_root / run_id
        run_dir.mkdir(parents=True)
        config = dict(config)
        trainer = dict(config.get("trainer") or {})
        trainer["default_root_dir"] = str(self.runs_root)
        config["trainer"] = trainer
        config["run_name"] = run_id
        (run_dir / "submitted_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        if dataset_root:  # lets the app find class colours and chips of the run's dataset later
            (run_dir / "app.json").write_text(json.dumps({"dataset_root": str(dataset_root)}))
        for file_name, text in (files or {}).items():
            (run_dir / file_name).write_text(text)
        record = self.store.add(
            run_id, name or run_id, run_dir, device, tags=list(tags), owner=self.actor.user
        )
        self._write_job(record)
        if dispatch:
            self.dispatch()
        return self.store.get(record.id)

    # -- bookkeeping --------------------------------------------------------------------------
    def reconcile(self) -> list[str]:
        """Mark running jobs whose worker is gone (killed, machine restarted) as interrupted."""
        changed = []
        for run in self.store.list(status=RUNNING):
            if not pid_alive(run.pid, run.pid_start):
                with self.store.transaction() as conn:
                    if self.store.get(run.id, conn).status == RUNNING:  # the worker did not record an exit
                        self.store.update(
                            run.id,
                            conn=conn,
                            status=INTERRUPTED,
                            finished=time.time(),
                            error="the training process disappeared without recording an exit "
                            "(killed, out of memory, or the machine restarted); resume it from its last checkpoint",
                        )
                        changed.append(run.id)
        return changed

    def _at_limit(self, run: RunRecord, running_per_owner: Counter[str]) -> bool:
        """True when ``run``'s owner already runs as many jobs as one user may (runs without owner: never)."""
        if self.max_jobs_per_user is None or run.owner is None:
            return False
        return running_per_owner[user_key(run.owner)] >= self.max_jobs_per_user

    def dispatch(self) -> list[str]:
        """Start the oldest queued job of every free device whose owner is below the per-user limit;
        return the ids started.

        Safe to call from any number of processes at once: the check and the start happen inside
        one write transaction.
        """
        self.reconcile()
        started: list[str] = []
        with self.store.transaction() as conn:
            running = self.store.list(status=RUNNING, conn=conn)
            busy = {r.device for r in running}
            per_owner = Counter(user_key(r.owner) for r in running if r.owner is not None)
            for run in self.store.list(status=QUEUED, conn=conn, oldest_first=True):
                if run.device in busy or self._at_limit(run, per_owner):
                    continue
                proc = self._launch(run)
                self.store.update(
                    run.id,
                    conn=conn,
                    status=RUNNING,
                    pid=proc.pid,
                    pid_start=process_start_ticks(proc.pid),
                    started=time.time(),
                    finished=None,
                    exit_code=None,
                    error=None,
                    stop_requested=0,
                    attempts=run.attempts + 1,
                )
                busy.add(run.device)
                if run.owner is not None:
                    per_owner[user_key(run.owner)] += 1
                started.append(run.id)
        return started

    def queue_reason(self, run_id: str) -> str:
        """Why a queued run waits, in the words the pages show (the rules of :meth:`dispatch`)."""
        run = self.store.get(run_id)
        if run.status != QUEUED:
            return f"not queued: it is {run.status}"
        running = self.store.list(status=RUNNING)
        per_owner = Counter(user_key(r.owner) for r in running if r.owner is not None)
        if self._at_limit(run, per_owner):
            return (
                f"{run.owner} already has {per_owner[user_key(run.owner or '')]} jobs running, the most one "
                f"user may run at once (GEOFT_MAX_JOBS_PER_USER={self.max_jobs_per_user}); it starts when "
                "one of them ends"
            )
        on_device = [r for r in running if r.device == run.device]
        ahead = [
            r
            for r in self.store.list(status=QUEUED, oldest_first=True)
            if r.device == run.device
            and (r.created, r.id) < (run.created, run.id)
            and not self._at_limit(r, per_owner)
        ]
        behind = f", after {len(ahead)} earlier queued job(s) for it" if ahead else ""
        if on_device:
            other = on_device[0]
            owner = f" of {other.owner}" if other.owner else ""
            return f"device `{run.device}` is busy with run {other.name!r}{owner}; it starts when that ends{behind}"
        return f"device `{run.device}` is free: it starts at the next dispatch (any page load){behind}"

    def _write_job(self, run: RunRecord) -> None:
        """Freeze the job's command in its folder, so any process can launch it later."""
        argv = self.command_factory(run)
        (run.run_dir / "job.json").write_text(json.dumps({"argv": argv, "grace_s": self.stop_grace_s}))

    def _launch(self, run: RunRecord) -> subprocess.Popen[bytes]:
        worker = [self.python, "-m", "geoft.app.worker", "--store", str(self.store.path), "--run", run.id]
        if (
            self.max_jobs_per_user is not None
        ):  # the worker's own dispatch, when the job ends, keeps the limit
            worker += ["--max-jobs-per-user", str(self.max_jobs_per_user)]
        with open(run.run_dir / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                worker,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=run.run_dir,
                start_new_session=True,  # survives the session that started it
                close_fds=True,
            )
        # Reap the worker when it exits so it does not linger as a zombie of this process.
        threading.Thread(target=proc.wait, daemon=True).start()
        return proc

    # -- controlling --------------------------------------------------------------------------
    def stop(self, run_id: str) -> str:
        """Cancel a queued job or ask a running one to stop (it keeps its checkpoints)."""
        with self.store.transaction() as conn:
            run = self.store.get(run_id, conn)
            check_may_control(self.actor, run, "stop")
            if run.status == QUEUED:
                self.store.update(run_id, conn=conn, status=CANCELLED, finished=time.time())
                return CANCELLED
            if run.status != RUNNING:
                raise ConfigError(f"run {run_id!r} is {run.status}, not running or queued; nothing to stop")
            self.store.update(run_id, conn=conn, stop_requested=1)
        if not send_signal(run.pid or 0, signal.SIGTERM, run.pid_start):
            self.reconcile()
        return "stopping"

    def resume(self, run_id: str) -> RunRecord:
        """Queue a finished (stopped, failed, interrupted) job again, from its last checkpoint if any."""
        self.reconcile()
        run = self.store.get(run_id)
        check_may_control(self.actor, run, "resume")
        if run.is_active:
            raise ConfigError(f"run {run_id!r} is already {run.status}")
        ckpt = run.folder.last()
        with self.store.transaction() as conn:
            self.store.update(
                run_id,
                conn=conn,
                status=QUEUED,
                resume_ckpt=str(ckpt) if ckpt else None,
                stop_requested=0,
                error=None,
                exit_code=None,
                finished=None,
            )
        self._write_job(self.store.get(run_id))
        self.dispatch()
        return self.store.get(run_id)

    def delete(self, run_id: str) -> None:
        """Delete a finished run: its row and its folder (which must lie inside the runs root)."""
        run = self.store.get(run_id)
        check_may_control(self.actor, run, "delete")
        if run.is_active:
            raise ConfigError(f"run {run_id!r} is {run.status}; stop it before deleting")
        folder = confine(run.run_dir, [self.runs_root])
        if folder == self.runs_root:
            raise ConfigError("refusing to delete the runs root itself")
        shutil.rmtree(folder, ignore_errors=True)
        self.store.delete(run_id)

    def wait(self, run_id: str, timeout_s: float, poll_s: float = 0.2) -> RunRecord:
        """Block until a job is no longer queued/running (for scripts and tests)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.reconcile()
            run = self.store.get(run_id)
            if not run.is_active:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run.status} after {timeout_s:.0f} s")
            time.sleep(poll_s)
