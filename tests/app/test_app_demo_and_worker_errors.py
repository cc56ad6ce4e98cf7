"""Demo generation by two sessions at once, and the error a failed job shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from geoft.app.worker import extract_error

GENERATE = """
import json, sys
from geoft.app.demo import ensure_demo_dataset
from geoft.app.settings import load_settings
s = load_settings({"GEOFT_HOME": sys.argv[1], "GEOFT_DEMO_CHIPS": "8", "GEOFT_DEMO_SIZE": "32"})
s.ensure_dirs()
out = ensure_demo_dataset(s)
print(json.dumps(sorted(p.name for p in (out / "train" / "images").iterdir())))
"""


def test_two_processes_generating_the_demo_at_once_both_get_it_whole(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", GENERATE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    first, second = (json.loads(o.strip().splitlines()[-1]) for o in outputs)
    assert first == second and len(first) == 8
    demo = next(tmp_path.rglob("dataset.json")).parent
    assert len(list((demo / "train" / "images").iterdir())) == 8


def test_failed_job_shows_the_cli_message_not_the_warnings_around_it() -> None:
    log = "\n".join(
        [
            "[geoft worker] 2026-11-29 07:00:00 starting: geoft fit -c config.yaml",
            "UserWarning: The number of training batches is small",
            "geoft: error: cannot write checkpoint /runs/x/checkpoints/last.ckpt: the disk is full",
            "  hint: free space, then resume the run",
            "[geoft worker] exit code 2",
        ]
    )
    error = extract_error(log)
    assert error.startswith("geoft: error: cannot write checkpoint")
    assert "hint: free space" in error
    assert "UserWarning" not in error and "[geoft worker]" not in error


def test_failed_job_with_a_traceback_shows_its_exception_line() -> None:
    log = "Traceback (most recent call last):\n  File 'x.py', line 1\nValueError: bad value\n"
    assert extract_error(log).startswith("ValueError: bad value")
