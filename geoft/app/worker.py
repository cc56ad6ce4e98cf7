"""The detached job worker: ``python -m geoft.app.worker --store DB --run ID``.

Runs the job's command (``geoft fit ...``) as a lower-priority child (so that a job on the CPU never
starves the pages of the web server) with its output in ``train.log``, forwards a
stop request (SIGTERM) to it, records the outcome (completed / stopped / failed with the error
message) in the run store, then dispatches the next queued job. The error message is the ``end``
event the run wrote into ``metrics.jsonl``; a run that failed before training started (a bad config)
wrote none, and the end of ``train.log`` says why. If the worker itself is killed,
no exit is recorded and the job is later marked interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from geoft.app.processes import training_child_setup
from geoft.app.progress import best_metrics
from geoft.app.run_store import COMPLETED, FAILED, STOPPED, RunStore
from geoft.storage import free_bytes

_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)[\w.]*)(:.*)?$")


def extract_error(log_text: str, max_lines: int = 6) -> str:
    """The error a user should see, from the end of a training log.

    A Python traceback gives its final exception line; a CLI error (``geoft`` prints the message of
    a GeoftError) gives its last lines.
    """
    lines = [ln.rstrip() for ln in log_text.splitlines() if ln.strip()]
    if not lines:
        return "the training process failed without writing any output"
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("geoft: error:"):  # the CLI's own plain message (and its hint line)
            return "\n".join(ln.strip() for ln in lines[i:] if not ln.startswith("[geoft worker]"))
    if any(ln.startswith("Traceback") for ln in lines):
        for i in range(len(lines) - 1, -1, -1):
            if _EXC_LINE.match(lines[i].strip()):
                return "\n".join(ln.strip() for ln in lines[i : i + max_lines])
    return "\n".join(lines[-max_lines:])


def error_from_end_event(end: dict[str, Any] | None) -> str | None:
    """The error of a failed run's ``end`` event, worded as ``geoft`` prints it (None if it did not fail)."""
    if not end or end.get("status") != "failed":
        return None
    message, error = end.get("message"), end.get("error")
    if message and message != error:  # a GeoftError: its plain message, as the CLI prints it
        return f"geoft: error: {message}"
    return message or error or None


def _tail(path: Path, max_bytes: int = 20_000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_job(store_path: Path, run_id: str) -> int:
    """Run one job to the end and record its outcome; return the child's exit code."""
    store = RunStore(store_path)
    run = store.get(run_id)
    spec = json.loads((run.run_dir / "job.json").read_text())
    argv: list[str] = spec["argv"]
    grace_s = float(spec.get("grace_s", 30.0))
    stop = threading.Event()
    folder = run.folder
    events_from = folder.metrics_size()  # a resumed run appends: its own events start here

    def note(log: BinaryIO, text: str) -> None:
        try:  # a full disk must not stop the worker from recording the outcome
            log.write(f"[geoft worker] {text}\n".encode())
        except OSError:
            pass

    with open(run.log_path, "ab", buffering=0) as log:
        note(log, f"{time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}")
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=run.run_dir,
            preexec_fn=training_child_setup,
        )

        def on_stop(signum: int, _frame: object) -> None:
            if stop.is_set():
                return
            stop.set()
            note(log, "stop requested")
            child.send_signal(signal.SIGTERM)

            def escalate() -> None:
                if child.poll() is None:
                    child.kill()

            timer = threading.Timer(grace_s, escalate)
            timer.daemon = True
            timer.start()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        rc = child.wait()
        note(log, f"exit code {rc}")

    stop_requested = stop.is_set() or store.get(run_id).stop_requested
    if stop_requested:
        status, error = STOPPED, None
    elif rc == 0:
        status, error = COMPLETED, None
    else:
        error = error_from_end_event(folder.end(events_from)) or extract_error(_tail(run.log_path))
        status = FAILED
        if free_bytes(run.run_dir) == 0:
            error = f"the disk holding {run.run_dir} is full; free space, then resume the run\n{error}"
    metrics_file = folder.metrics_file()
    best = best_metrics(metrics_file) if metrics_file else {}
    store.update(run_id, status=status, exit_code=rc, error=error, finished=time.time(), best_metrics=best)
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--no-dispatch", action="store_true", help="do not start the next queued job")
    parser.add_argument(
        "--max-jobs-per-user",
        type=int,
        default=None,
        help="the app's per-user job limit, kept when dispatching",
    )
    args = parser.parse_args(argv)
    rc = run_job(args.store, args.run)
    if not args.no_dispatch:
        from geoft.app.jobs import JobRunner

        store = RunStore(args.store)
        runs_root = store.get(args.run).run_dir.parent
        JobRunner(store, runs_root, max_jobs_per_user=args.max_jobs_per_user).dispatch()
    return rc


if __name__ == "__main__":
    sys.exit(main())
