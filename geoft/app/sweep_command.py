"""A sweep job's files and its ``geoft sweep`` command (what the job queue needs to run one).

The rest of a sweep job, the form and the submission, is :mod:`geoft.app.sweep_jobs`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from geoft.app.run_store import RunRecord

SWEEP_TAG = "sweep"
SPACE_FILE = "space.yaml"
SWEEP_FILE = "sweep.json"
JOURNAL_FILE = "study.journal"
BEST_FILE = "best.yaml"


def is_sweep(run: RunRecord) -> bool:
    return SWEEP_TAG in run.tags


def journal_path(run: RunRecord) -> Path:
    return run.run_dir / JOURNAL_FILE


def sweep_settings(run: RunRecord) -> dict[str, Any]:
    """``{"trials": N, "max_epochs": E or None}`` of a sweep job."""
    return json.loads((run.run_dir / SWEEP_FILE).read_text())


def geoft_sweep_command(run: RunRecord) -> list[str]:
    """``geoft sweep`` on the job's folder; a resumed sweep loads its study and runs its trials again."""
    settings = sweep_settings(run)
    argv = [sys.executable, "-m", "geoft.cli", "sweep", "-c", str(run.submitted_config_path)]
    argv += ["--space", str(run.run_dir / SPACE_FILE), "--trials", str(settings["trials"])]
    argv += ["--study_name", run.id, "--storage", str(journal_path(run))]
    argv += ["--best_config", str(run.run_dir / BEST_FILE)]
    if settings.get("max_epochs"):
        argv += ["--max_epochs", str(settings["max_epochs"])]
    return argv


__all__ = ["SWEEP_TAG", "geoft_sweep_command", "is_sweep", "journal_path", "sweep_settings"]
