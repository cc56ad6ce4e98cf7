"""``geoft fit`` with a TerraMind encoder on the tiny demo data (its six HLS bands as S2L2A bands)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_geoft_fit_terramind_upernet_one_epoch(tmp_path: Path, tiny_demo_workspace) -> None:
    root = tiny_demo_workspace(tmp_path, {"max_epochs": 1})
    config = yaml.safe_load((root / "config.yaml").read_text())
    args = config["model"]["init_args"]["model_args"]
    args.update(
        backbone="terramind_v1_tiny",
        backbone_modalities=["S2L2A"],
        backbone_depth=4,
        backbone_merge_method="mean",
    )  # backbone_bands (BLUE ... SWIR_2) select their S2L2A patch-embedding weights
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-m", "geoft.cli", "fit", "-c", "config.yaml", "--run_name", "tm"],
        cwd=root, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    run_dir = root / "runs" / "tm"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "end" and events[-1]["status"] == "finished"
    assert any(e["event"] == "metrics" and e["stage"] == "val" for e in events)
