"""geoft's torchgeo backbones give the reference's (TerraTorch's) features for the same weights file.

Runs only where the reference environment ``benchmarks/.venv-ref`` exists. The test writes weight
files in the published layouts (as torchgeo's enums hold them); the reference loads each with its
own builder (same name, ``pretrained=True, ckpt_data=file``) and saves its features for a fixed
input; geoft loads the same file and must match to 1e-4.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import timm
import torch
import torchgeo.models

from geoft.models.backbones.bands import Band
from geoft.models.backbones.torchgeo_weights import published_bands
from geoft.registry import BACKBONE_REGISTRY

REPO = Path(__file__).resolve().parents[2]
REF_PYTHON = REPO / "benchmarks" / ".venv-ref" / "bin" / "python"

BANDS = ["RED", "GREEN", "BLUE", "NIR_BROAD"]
CASES = {
    # name: (input size, reference out_indices)
    "ssl4eos12_resnet18_sentinel2_all_moco": (64, [0, 1, 2, 3, 4]),
    "ssl4eos12_vit_small_patch16_224_sentinel2_all_dino": (224, None),
    "satlas_swin_t_sentinel2_si_ms": (64, [1, 3, 5, 7]),
    "dofa_small_patch16_224": (224, [0, 5, 11]),
}

SCRIPT = r"""
import json, sys, torch
from terratorch.registry import BACKBONE_REGISTRY
folder, bands = sys.argv[1], json.loads(sys.argv[2])
cases = json.loads(sys.argv[3])
for name, (size, out_indices) in cases.items():
    torch.manual_seed(0)
    kw = {"out_indices": out_indices} if out_indices is not None else {}
    model = BACKBONE_REGISTRY.build(name, model_bands=bands, pretrained=True, ckpt_data=f"{folder}/{name}.pth", **kw)
    model.eval()
    x = torch.randn(2, len(bands), size, size)
    with torch.no_grad():
        feats = [f.contiguous() for f in model(x)]
    torch.save({"x": x, "feats": feats}, f"{folder}/{name}.out.pt")

# Known reference bug: its band table reads every torchgeo band code as a Sentinel-2 code.
from terratorch.models.backbones.torchgeo_resnet import get_pretrained_bands
from torchgeo.models import ResNet18_Weights
bugs = {"oli_tirs": get_pretrained_bands(ResNet18_Weights.LANDSAT_OLI_TIRS_TOA_MOCO.meta["bands"])}
try:
    get_pretrained_bands(ResNet18_Weights.LANDSAT_OLI_SR_MOCO.meta["bands"])
    bugs["oli_sr"] = "ok"
except KeyError as err:
    bugs["oli_sr"] = f"KeyError {err}"
json.dump(bugs, open(f"{folder}/bugs.json", "w"))
"""


def _published_file(name: str, path: Path) -> None:
    """Write ``name``'s weights in the layout of its torchgeo enum file (random values)."""
    torch.manual_seed(1)
    if "resnet18" in name:
        state = timm.create_model("resnet18", in_chans=13).state_dict()
    elif "vit_small" in name:
        state = timm.create_model("vit_small_patch16_224", in_chans=13).state_dict()
    elif "swin" in name:
        swin = torchgeo.models.swin_v2_t(None)
        swin.features[0][0] = torch.nn.Conv2d(9, 96, kernel_size=4, stride=4)
        state = swin.state_dict()
    else:
        dofa = torchgeo.models.dofa_small_patch16_224()
        state = {k: v for k, v in dofa.state_dict().items() if not k.startswith(("head.", "fc_norm."))}
    with torch.no_grad():  # batch-norm statistics away from their init
        for key, value in state.items():
            if "running_var" in key:
                value.uniform_(0.5, 2.0)
    torch.save(state, path)


@pytest.fixture(scope="module")
def reference_outputs(tmp_path_factory) -> Path:
    if not REF_PYTHON.exists():
        pytest.skip(
            f"REFERENCE MISSING: {REF_PYTHON} not found; run benchmarks/setup_reference.sh to compare"
        )
    import json

    folder = tmp_path_factory.mktemp("torchgeo_ref")
    for name in CASES:
        _published_file(name, folder / f"{name}.pth")
    run = subprocess.run(
        [str(REF_PYTHON), "-c", SCRIPT, str(folder), json.dumps(BANDS), json.dumps(CASES)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return folder


def _as_maps(features: list[torch.Tensor], name: str, size: int) -> list[torch.Tensor]:
    """geoft's features in the reference's layout (timm ViT maps NCHW; Swin NHWC; DOFA tokens)."""
    if "vit_small" in name:
        side = size // 16
        return [t[:, 1:].transpose(1, 2).reshape(t.shape[0], -1, side, side) for t in features]
    if "swin" in name:
        return [f.permute(0, 2, 3, 1) for f in features]
    return features


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_same_features_as_reference(name, reference_outputs):
    ref = torch.load(reference_outputs / f"{name}.out.pt", weights_only=True)
    size, out_indices = CASES[name]
    kwargs = {"out_indices": [0, 5, 11]} if name.startswith("dofa") else {}
    model = BACKBONE_REGISTRY.build(
        name, bands=BANDS, ckpt_path=reference_outputs / f"{name}.pth", **kwargs
    ).eval()
    with torch.no_grad():
        ours = _as_maps(model(ref["x"]), name, size)
    assert len(ours) == len(ref["feats"])
    for mine, theirs in zip(ours, ref["feats"], strict=True):
        assert mine.shape == theirs.shape
        assert torch.allclose(mine, theirs, atol=1e-4, rtol=0), (mine - theirs).abs().max()


def test_landsat_bands_where_the_reference_is_wrong(reference_outputs):
    """The reference reads Landsat codes as Sentinel-2 codes: Landsat 8 B5 (near infrared) becomes
    RED_EDGE_1 and the surface-reflectance codes (SR_B1...) raise KeyError, so its band selection
    for SSL4EO-L weights picks wrong channels or fails. geoft reads each sensor's own table."""
    import json

    bugs = json.loads((reference_outputs / "bugs.json").read_text())
    assert bugs["oli_tirs"][4] == "RED_EDGE_1"
    assert bugs["oli_sr"].startswith("KeyError")
    oli = published_bands(torchgeo.models.ResNet18_Weights.LANDSAT_OLI_TIRS_TOA_MOCO)
    assert oli[4] is Band.NIR_NARROW and oli[9] is Band.THERMAL_INFRARED_1
    sr = published_bands(torchgeo.models.ResNet18_Weights.LANDSAT_OLI_SR_MOCO)
    assert sr[4] is Band.NIR_NARROW
