"""geoft's Prithvi encoder gives the reference's (TerraTorch's) outputs for the same MAE checkpoint.

Runs only where the reference environment ``benchmarks/.venv-ref`` exists: TerraTorch builds a
small PrithviMAE, saves its state dict (the published layout) and its encoder outputs; geoft loads
that state dict and must reproduce the tokens.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from geoft.models.backbones.prithvi import build_prithvi

REPO = Path(__file__).resolve().parents[2]
REF_PYTHON = REPO / "benchmarks" / ".venv-ref" / "bin" / "python"

SCRIPT = r"""
import sys, torch
from terratorch.models.backbones.prithvi_mae import PrithviMAE
from terratorch.models.backbones.prithvi_vit import prithvi_cfgs
def one(variant, out):
    cfg = dict(prithvi_cfgs[variant])
    p = cfg["patch_size"][1]
    cfg.update(depth=2, decoder_depth=1, img_size=2 * p, num_frames=2)
    for k in ("mean", "std", "bands"):
        cfg.pop(k, None)
    torch.manual_seed(0)
    mae = PrithviMAE(**cfg).eval()
    with torch.no_grad():
        for param in mae.parameters():  # move the coordinate scales away from their init
            param.add_(0.01 * torch.randn_like(param))
    x = torch.randn(2, 6, 2, 2 * p, 2 * p)
    kw = {}
    if cfg["coords_encoding"]:
        kw = {"temporal_coords": torch.tensor([[[2020.0, 50.0], [2021.0, 300.0]]] * 2),
              "location_coords": torch.tensor([[40.0, -105.0], [-3.0, 120.0]])}
    with torch.no_grad():
        feats = mae.encoder.forward_features(x, **kw)
    torch.save({"state": mae.state_dict(), "x": x, "kw": kw, "feats": feats}, out)

for variant in sys.argv[2:]:
    one(variant, f"{sys.argv[1]}/{variant}.pt")
"""


VARIANTS = ["prithvi_eo_v2_tiny_tl", "prithvi_eo_v1_100", "prithvi_eo_v2_600"]


@pytest.fixture(scope="module")
def reference_outputs(tmp_path_factory) -> Path:
    if not REF_PYTHON.exists():
        pytest.skip(
            f"REFERENCE MISSING: {REF_PYTHON} not found; run benchmarks/setup_reference.sh to compare"
        )
    folder = tmp_path_factory.mktemp("prithvi_ref")
    run = subprocess.run(
        [str(REF_PYTHON), "-c", SCRIPT, str(folder), *VARIANTS], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_same_tokens_as_reference(variant, reference_outputs):
    ref = torch.load(reference_outputs / f"{variant}.pt", weights_only=True)
    p = 2 * (14 if variant.endswith("600") else 16)
    model = build_prithvi(variant, depth=2, img_size=p, num_frames=2).eval()
    from geoft.models.backbones.bands import PRITHVI_BANDS
    from geoft.models.backbones.prithvi_weights import load_prithvi_checkpoint

    report = load_prithvi_checkpoint(model, ref["state"], PRITHVI_BANDS)
    assert any("equals geoft's sin-cos table" in n for n in report.notes)
    with torch.no_grad():
        ours = model(ref["x"], **ref["kw"])
    assert len(ours) == len(ref["feats"]) == 2
    for a, b in zip(ours, ref["feats"]):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), float((a - b).abs().max())
