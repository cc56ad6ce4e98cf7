"""geoft's Prithvi Swin gives the reference's (TerraTorch's) pyramid for the same weights and input.

Runs only where ``benchmarks/.venv-ref`` exists: TerraTorch builds a small ``MMSegSwinTransformer``
(the class behind its ``prithvi_swin_B`` / ``_L``), perturbs and saves its state dict (the layout
its checkpoints use) and the output of every stage; geoft loads that state dict and must give the
same four levels within 1e-4, at sizes that are and are not whole numbers of windows.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from geoft.models.backbones.bands import PRITHVI_BANDS
from geoft.models.backbones.prithvi_swin_model import PrithviSwin
from geoft.models.backbones.prithvi_swin_weights import load_swin_checkpoint

REPO = Path(__file__).resolve().parents[2]
REF_PYTHON = REPO / "benchmarks" / ".venv-ref" / "bin" / "python"
SIZES = ((224, 224), (64, 96), (50, 70))

SCRIPT = r"""
import sys, torch
from terratorch.models.backbones.swin_encoder_decoder import MMSegSwinTransformer
torch.manual_seed(0)
m = MMSegSwinTransformer(in_chans=6, embed_dim=32, depths=(1, 2, 2, 1), num_heads=(2, 4, 8, 16),
                         window_size=7, drop_path_rate=0.0)
m.eval()  # its train() override returns None
with torch.no_grad():
    for p in m.parameters():
        p.add_(0.02 * torch.randn_like(p))
out = {"state": {"model." + k: v for k, v in m.state_dict().items()}}
for h, w in ((224, 224), (64, 96), (50, 70)):
    x = torch.randn(2, 6, h, w)
    feats, state = [], None
    with torch.no_grad():
        state = m.patch_embed(x)
        for stage in m.stages:
            y = stage(state)
            feats.append(y[0].permute(0, 3, 1, 2).contiguous())  # NHWC -> NCHW, as its factory does
            state = (y[2], y[3])
    out[f"{h}x{w}"] = {"x": x, "feats": feats}
torch.save(out, sys.argv[1])
"""


@pytest.fixture(scope="module")
def reference_outputs(tmp_path_factory) -> dict:
    if not REF_PYTHON.exists():
        pytest.skip(
            f"REFERENCE MISSING: {REF_PYTHON} not found; run benchmarks/setup_reference.sh to compare"
        )
    path = tmp_path_factory.mktemp("swin_ref") / "swin.pt"
    run = subprocess.run([str(REF_PYTHON), "-c", SCRIPT, str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_same_pyramid_as_reference(reference_outputs):
    model = PrithviSwin(
        in_chans=6, embed_dim=32, depths=(1, 2, 2, 1), num_heads=(2, 4, 8, 16), drop_path_rate=0.0
    ).eval()
    report = load_swin_checkpoint(model, reference_outputs["state"], PRITHVI_BANDS)
    assert "model.head.fc.weight" in report.dropped
    for h, w in SIZES:
        ref = reference_outputs[f"{h}x{w}"]
        with torch.no_grad():
            ours = model(ref["x"])
        assert [tuple(o.shape) for o in ours] == [tuple(r.shape) for r in ref["feats"]]
        for a, b in zip(ours, ref["feats"]):
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (h, w, float((a - b).abs().max()))
