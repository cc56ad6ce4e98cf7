"""Fixtures shared by the run-folder tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from geoft.runs import RunDir


@pytest.fixture
def fresh_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No run folder inherited from an earlier command in this process."""
    monkeypatch.delenv("GEOFT_RUN_DIR", raising=False)


@pytest.fixture
def trained_folder(tmp_path: Path) -> RunDir:
    """A run folder as ``geoft fit`` leaves it: a best and a last checkpoint (last written later)."""
    run = RunDir(tmp_path / "run")
    run.checkpoints_dir.mkdir(parents=True)
    best = run.checkpoints_dir / "best-epoch=01.ckpt"
    best.write_bytes(b"b")
    last = run.checkpoints_dir / "last.ckpt"
    last.write_bytes(b"l")
    now = time.time()
    os.utime(best, (now - 10, now - 10))
    os.utime(last, (now, now))
    return run
