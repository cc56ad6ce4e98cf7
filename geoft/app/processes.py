"""Process helpers: identity-checked liveness (pid reuse safe), signals, parent-death signal, priority."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux ``/proc``); None when unknown or gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()[0]


def pid_alive(pid: int | None, start_ticks: int | None = None) -> bool:
    """True when ``pid`` runs and (if given) started at ``start_ticks``; zombies count as dead."""
    if not pid or pid <= 0:
        return False
    if sys.platform.startswith("linux"):
        state = _state(pid)
        if state is None or state in ("Z", "X"):
            return False
        return start_ticks is None or process_start_ticks(pid) == start_ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def send_signal(pid: int, sig: int, start_ticks: int | None = None) -> bool:
    """Signal ``pid`` only if it is still the same process; return whether it was sent."""
    if not pid_alive(pid, start_ticks):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def die_with_parent() -> None:
    """``preexec_fn``: ask Linux to SIGKILL this child when its parent (the job worker) dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


JOB_NICENESS = 10
"""How much lower than the web server a training job runs: under CPU contention the pages of every
user stay responsive, and an otherwise idle machine still gives the job all of its time."""


def training_child_setup() -> None:
    """``preexec_fn`` of a training process: die with the worker, yield the CPU to the web server."""
    die_with_parent()
    try:
        os.nice(JOB_NICENESS)
    except OSError:  # not permitted: run at normal priority
        pass
