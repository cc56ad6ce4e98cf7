"""Shared fixtures. Tests use tiny models and chips so the whole suite runs on 2 CPU cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_data_root() -> Path | None:
    """``$GEOFT_REAL_DATA`` or ``../shared/data/real`` beside the repo, if present."""
    env = os.environ.get("GEOFT_REAL_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data" / "real"
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip(
            "REAL DATA MISSING: set GEOFT_REAL_DATA or place ../shared/data/real beside the repo; "
            "tests on real Earth-observation samples are skipped",
        )
    return root


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> None:
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
