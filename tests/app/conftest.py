"""Fixtures shared by the app tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh app home; no data/run root overrides and no password from the environment."""
    monkeypatch.setenv("GEOFT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GEOFT_DATA_ROOTS", raising=False)
    monkeypatch.delenv("GEOFT_RUNS_ROOT", raising=False)
    monkeypatch.delenv("GEOFT_APP_PASSWORD", raising=False)
    monkeypatch.setenv("GEOFT_BASEMAP_URL", "none")  # no request leaves the machine in tests
    return tmp_path / "home"
