"""``geoft fit`` for one epoch on the tiny demo data with one torchgeo-based backbone of each family."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from geoft.cli import main

HLS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
# family -> model_args for the demo's 6 HLS bands on 32 px chips (random weights, reduced depth)
FAMILIES = {
    "resnet": {"backbone": "ssl4eos12_resnet18_sentinel2_all_moco"},
    "vit": {"backbone": "ssl4eos12_vit_small_patch16_224_sentinel2_all_dino", "backbone_depth": 2},
    "swin": {"backbone": "satlas_swin_t_sentinel2_si_ms"},
    "wavelength": {"backbone": "dofa_small_patch16_224", "backbone_depth": 2},
    "croma": {"backbone": "croma_base_optical", "backbone_depth": 2, "backbone_image_size": 32},
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_demo_workspace) -> Path:
    return tiny_demo_workspace(
        tmp_path_factory.mktemp("torchgeo_fit"), {"max_epochs": 1, "accelerator": "cpu"}
    )


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_fit_one_epoch(workspace: Path, family: str) -> None:
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    config["model"]["init_args"]["model_args"] = {
        **FAMILIES[family],
        "backbone_pretrained": False,
        "backbone_bands": HLS,
        "decoder": "UperNetDecoder",
        "decoder_channels": 16,
        "num_classes": 5,
    }
    (workspace / f"{family}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        assert main(["fit", "-c", f"{family}.yaml", "--run_name", family]) == 0
    finally:
        os.chdir(cwd)
    run = workspace / "runs" / family
    assert (run / "checkpoints" / "last.ckpt").is_file()
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "end" and events[-1]["status"] == "finished"
    metrics = [v for e in events if e["event"] == "metrics" for v in e["metrics"].values()]
    assert metrics and all(np.isfinite(metrics))
