"""``geoft fit`` for one epoch on tiny demo data with a Clay and a Prithvi Swin backbone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from geoft.cli import main

MODELS = {
    "clay": {
        "backbone": "clay_mae_tiny",
        "backbone_depth": 2,
        "backbone_bands": ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"],
        "backbone_gsd": 30.0,
    },
    "swin": {
        "backbone": "prithvi_swin_B",
        "backbone_depths": [1, 1, 1, 1],
        "backbone_bands": ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"],
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(MODELS))
def test_fit_one_epoch(family: str, tmp_path: Path, tiny_demo_workspace) -> None:
    workspace = tiny_demo_workspace(tmp_path, {"max_epochs": 1})
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    args = config["model"]["init_args"]["model_args"]
    for key in ("backbone_depth", "backbone_img_size", "backbone_bands"):
        args.pop(key, None)
    args.update(MODELS[family])
    (workspace / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        assert main(["fit", "-c", "config.yaml", "--run_name", family]) == 0
    finally:
        os.chdir(cwd)
    assert (workspace / "runs" / family / "checkpoints" / "last.ckpt").is_file()
