"""Satlas Swin V2 (torchgeo's swin_v2_t/b): strict loading of the published layout, band selection,
offline errors, pyramid contract, training through EncoderDecoderFactory and ONNX export."""

from __future__ import annotations

import pytest
import torch
import torchgeo.models

from geoft.errors import OfflineError
from geoft.models.backbones import downloads
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.registry import BACKBONE_REGISTRY

SWIN = "satlas_swin_t_sentinel2_si_ms"  # published bands B04 B03 B02 B05 B06 B07 B08 B11 B12


@pytest.fixture(scope="module")
def swin_file(tmp_path_factory):
    """The enum's layout: torchvision's whole Swin V2-T with a 9-band patch embedding (as torchgeo builds it)."""
    torch.manual_seed(0)
    swin = torchgeo.models.swin_v2_t(None)
    swin.features[0][0] = torch.nn.Conv2d(9, 96, kernel_size=4, stride=4)
    path = tmp_path_factory.mktemp("swin") / "sentinel2_swint_si_ms.pth"
    torch.save(swin.state_dict(), path)
    return path, swin.state_dict()


def test_swin_loads_strictly_and_selects_bands(swin_file):
    path, state = swin_file
    model = BACKBONE_REGISTRY.build(SWIN, ckpt_path=path)
    assert set(model.load_report.dropped) == {"head.weight", "head.bias", "norm.weight", "norm.bias"}
    assert torch.equal(model.model.features[5][1].mlp[0].weight, state["features.5.1.mlp.0.weight"])
    feats = model(torch.randn(1, 9, 64, 64))
    assert [tuple(f.shape) for f in feats] == [
        (1, 96, 16, 16),
        (1, 192, 8, 8),
        (1, 384, 4, 4),
        (1, 768, 2, 2),
    ]
    picked = BACKBONE_REGISTRY.build(SWIN, ckpt_path=path, bands=["BLUE", "SWIR_2"], out_indices=[1, 3])
    w, src = picked.model.features[0][0].weight, state["features.0.0.weight"]
    assert torch.equal(w[:, 0], src[:, 2]) and torch.equal(w[:, 1], src[:, 8])
    assert picked.out_channels == [192, 768] and picked.reductions == [8, 32]


def test_offline(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(downloads, "host_reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(OfflineError, match="ckpt_path") as info:
        BACKBONE_REGISTRY.build("satlas_swin_b_sentinel1_si", pretrained=True)
    assert "sentinel1_swinb_si" in str(info.value)


@pytest.mark.parametrize(
    ("decoder", "kwargs"),
    [("UperNetDecoder", {"channels": 8, "pool_scales": [1, 2]}), ("UNetDecoder", {"channels": [16] * 4})],
)
def test_trains_through_encoder_decoder_factory(swin_file, decoder, kwargs):
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone=SWIN,
        decoder=decoder,
        num_classes=3,
        backbone_ckpt_path=str(swin_file[0]),
        backbone_bands=["RED", "GREEN", "BLUE"],
        decoder_kwargs=kwargs,
    )
    out = model(torch.randn(2, 3, 64, 64)).output
    assert out.shape == (2, 3, 64, 64)
    out.square().mean().backward()
    assert model.encoder.model.features[0][0].weight.grad.abs().sum() > 0


@pytest.mark.slow  # torch.export of torchvision's shifted-window attention takes about a minute
def test_onnx_export_matches_onnxruntime(tmp_path):
    from geoft.export import export_onnx
    from geoft.export_verify import verify_onnx

    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation", backbone=SWIN, decoder="FCNDecoder", num_classes=2, decoder_kwargs={"channels": 8}
    )
    model.eval()
    x = torch.randn(1, 9, 64, 64)
    path = export_onnx(model, tmp_path / "swin.onnx", x, dynamic_hw=False)
    assert verify_onnx(model, path, [x]) < 1e-3
