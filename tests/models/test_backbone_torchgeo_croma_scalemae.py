"""CROMA (optical, SAR, joint) and Scale-MAE: strict loading of the published layouts (reduced depth),
equality with torchgeo's own forward, band selection, offline errors, UperNet training and ONNX."""

from __future__ import annotations

import pytest
import torch
import torchgeo.models

from geoft.errors import ConfigError, OfflineError
from geoft.models.backbones import downloads
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.registry import BACKBONE_REGISTRY

PARTS = ("s1_encoder", "s1_GAP_FFN", "s2_encoder", "s2_GAP_FFN", "joint_encoder")


@pytest.fixture(scope="module")
def croma(tmp_path_factory):
    """CROMA's published layout: one state dict per part, here of a depth-2 joint model for 16 px."""
    torch.manual_seed(0)
    model = torchgeo.models.CROMA(
        modalities=["sar", "optical"], encoder_dim=768, encoder_depth=2, num_heads=16, image_size=16
    ).eval()
    path = tmp_path_factory.mktemp("croma") / "CROMA_base.pt"
    torch.save({part: getattr(model, part).state_dict() for part in PARTS}, path)
    return path, model


@pytest.mark.parametrize("modality", ["optical", "sar", "joint"])
def test_croma_matches_torchgeo(croma, modality):
    path, reference = croma
    model = BACKBONE_REGISTRY.build(
        f"croma_base_{modality}", ckpt_path=path, image_size=16, depth=2, out_indices=[-1]
    ).eval()
    x = torch.randn(2, len(model.bands), 16, 16)
    with torch.no_grad():
        tokens = model(x)[0]
        out = reference(x_sar=x[:, -2:], x_optical=x[:, :12]) if modality == "joint" else None
        if modality == "optical":
            out = {"optical_encodings": reference.s2_encoder(x, reference.attn_bias)}
        if modality == "sar":
            out = {"sar_encodings": reference.s1_encoder(x, reference.attn_bias)}
    expected = out[f"{modality if modality != 'joint' else 'joint'}_encodings"]
    assert tokens.shape == (2, 1 + 4, 768)
    assert torch.allclose(tokens[:, 1:], expected, atol=1e-5)
    assert torch.allclose(tokens[:, 0], expected.mean(dim=1), atol=1e-5)
    assert any("GAP_FFN" in k for k in model.load_report.dropped)


def test_croma_band_selection_and_size_check(croma):
    path, reference = croma
    model = BACKBONE_REGISTRY.build(
        "croma_base_optical", ckpt_path=path, image_size=16, depth=2, bands=["RED", "NIR_BROAD", "NDVI"]
    )
    w = model.s2_encoder.linear_input.weight.reshape(768, 3, 64)
    src = reference.s2_encoder.linear_input.weight.reshape(768, 12, 64)
    assert torch.equal(w[:, 0], src[:, 3]) and torch.equal(w[:, 1], src[:, 7])
    assert "NDVI initialised new" in model.load_report.adapted["s2_encoder.linear_input.weight"]
    with pytest.raises(ConfigError, match="image_size"):
        model(torch.randn(1, 3, 32, 32))


def test_croma_offline(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(downloads, "host_reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(OfflineError, match="ckpt_path") as info:
        BACKBONE_REGISTRY.build("croma_base_sar", pretrained=True, image_size=16, depth=2)
    assert "CROMA_base" in str(info.value)


def test_croma_trains_with_upernet_and_exports_to_onnx(croma, tmp_path):
    from geoft.export import export_onnx
    from geoft.export_verify import verify_onnx

    path, _ = croma
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone="croma_base_sar",
        decoder="UperNetDecoder",
        num_classes=2,
        backbone_ckpt_path=str(path),
        backbone_image_size=16,
        backbone_depth=2,
        decoder_kwargs={"channels": 8, "pool_scales": [1]},
    )
    out = model(torch.randn(2, 2, 16, 16)).output
    assert out.shape == (2, 2, 16, 16)
    out.square().mean().backward()
    assert model.encoder.s1_encoder.linear_input.weight.grad.abs().sum() > 0
    model.eval()
    x = torch.randn(1, 2, 16, 16)
    onnx_path = export_onnx(model, tmp_path / "croma.onnx", x, dynamic_hw=False)
    assert verify_onnx(model, onnx_path, [x]) < 1e-3


def test_scalemae_loads_published_layout(tmp_path):
    from functools import partial

    torch.manual_seed(0)
    published = torchgeo.models.ScaleMAE(
        res=1.0, patch_size=16, embed_dim=1024, depth=2, num_heads=16, mlp_ratio=4, qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
    )  # fmt: skip
    torch.save(published.state_dict(), tmp_path / "scalemae.pth")
    model = BACKBONE_REGISTRY.build(
        "scalemae_large_patch16",
        ckpt_path=tmp_path / "scalemae.pth",
        depth=2,
        img_size=32,
        bands=["BLUE", "RED"],
    )
    w, src = model.model.patch_embed.proj.weight, published.patch_embed.proj.weight
    assert torch.equal(w[:, 0], src[:, 2]) and torch.equal(w[:, 1], src[:, 0])
    assert "unused by Scale-MAE" in model.load_report.adapted["pos_embed"]
    assert [t.shape for t in model(torch.randn(1, 2, 32, 32))] == [(1, 5, 1024)] * 2
    with pytest.raises(ConfigError, match="img_size"):
        model(torch.randn(1, 2, 48, 48))
