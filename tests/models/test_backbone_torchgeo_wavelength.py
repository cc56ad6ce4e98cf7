"""DOFA, CopernicusFM and Panopticon: wavelengths from band names, strict loading of the published
layouts (reduced depth), offline errors, training through EncoderDecoderFactory and ONNX export."""

from __future__ import annotations

import pytest
import torch
import torchgeo.models

from geoft.errors import ConfigError, OfflineError
from geoft.models.backbones import downloads
from geoft.models.backbones.band_wavelengths import (
    copernicusfm_spectra_nm,
    dofa_wavelengths_um,
    panopticon_channel_ids,
)
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.registry import BACKBONE_REGISTRY

S2 = ["BLUE", "GREEN", "RED", "NIR_BROAD"]


def test_wavelengths_come_from_band_names():
    assert dofa_wavelengths_um(["RED", "nir", "swir-1", "VV"]) == [0.665, 0.864, 1.61, 5.405]
    waves, widths = copernicusfm_spectra_nm(S2)
    assert waves == [490.0, 560.0, 665.0, 832.0] and widths == [65.0, 35.0, 30.0, 115.0]
    assert panopticon_channel_ids(["RED", "VV", "VH"]) == [665.0, -1.0, -2.0]
    with pytest.raises(ConfigError, match="wavelength of band 'NDVI'"):
        BACKBONE_REGISTRY.build("dofa_small_patch16_224", bands=["RED", "NDVI"], depth=1)
    with pytest.raises(ConfigError, match="needs their names"):
        BACKBONE_REGISTRY.build("dofa_small_patch16_224", depth=1)


@pytest.fixture(scope="module")
def dofa_file(tmp_path_factory):
    """DOFA's published layout (torchgeo's DOFA without the classifier), at the small size."""
    torch.manual_seed(0)
    dofa = torchgeo.models.dofa_small_patch16_224()
    state = {k: v for k, v in dofa.state_dict().items() if not k.startswith(("head.", "fc_norm."))}
    path = tmp_path_factory.mktemp("dofa") / "dofa_small.pth"
    torch.save(state, path)
    return path, dofa.eval()


def test_dofa_loads_strictly_and_matches_torchgeo(dofa_file):
    path, dofa = dofa_file
    model = BACKBONE_REGISTRY.build(
        "dofa_small_patch16_224", bands=S2, ckpt_path=path, out_indices=[-1]
    ).eval()
    assert model.load_report.dropped == {} and len(model.load_report.loaded) == len(torch.load(path))
    x = torch.randn(1, 4, 224, 224)
    with torch.no_grad():
        tokens = model(x)[0]
        # torchgeo's own forward, up to its pooling: the same blocks on the same embedded tokens
        expected = dofa.forward_features(x, dofa_wavelengths_um(S2))
    assert tokens.shape == (1, 1 + 14 * 14, 384)
    assert torch.allclose(dofa.fc_norm(tokens[:, 1:].mean(dim=1)), expected, atol=1e-5)
    smaller = model(torch.randn(2, 4, 32, 48))[0]  # position embedding resampled to the 2x3 grid
    assert smaller.shape == (2, 7, 384)


def test_dofa_offline_and_unpublished(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="no published weights"):
        BACKBONE_REGISTRY.build("dofa_small_patch16_224", bands=S2, pretrained=True, depth=1)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(downloads, "host_reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(OfflineError, match="ckpt_path") as info:
        BACKBONE_REGISTRY.build("copernicusfm_base", bands=S2, pretrained=True, depth=1)
    assert "CopernicusFM_ViT" in str(info.value)


def test_copernicusfm_loads_published_layout(tmp_path):
    torch.manual_seed(0)
    # torchgeo's CopernicusFM class at copernicusfm_base's sizes, one block deep: the published layout per block
    cfm = torchgeo.models.CopernicusFM(embed_dim=768, depth=1, num_heads=12)
    state = {k: v for k, v in cfm.state_dict().items() if not k.startswith("fc_norm.")}
    torch.save(state, tmp_path / "c.pth")
    model = BACKBONE_REGISTRY.build(
        "copernicusfm_base", bands=["RED", "VV"], ckpt_path=tmp_path / "c.pth", depth=1
    )
    assert torch.equal(model.coord_token, cfm.coord_token)
    assert all(k.startswith("patch_embed_variable.") for k in model.load_report.dropped)
    assert len(model.load_report.loaded) + len(model.load_report.dropped) == len(state)
    assert model(torch.randn(1, 2, 32, 32))[0].shape == (1, 5, 768)


def test_panopticon_resamples_published_position_embedding(tmp_path):
    torch.manual_seed(0)
    vit = torchgeo.models.Panopticon(img_size=224).model
    vit.blocks = vit.blocks[:1]
    state = dict(vit.state_dict())
    state["pos_embed"] = torch.randn(1, 1 + 37 * 37, 768)  # published for 518 px
    state["mask_token"] = torch.zeros(1, 768)
    torch.save(state, tmp_path / "p.pth")
    model = BACKBONE_REGISTRY.build(
        "panopticon_vitb14", bands=["RED", "VH"], ckpt_path=tmp_path / "p.pth", depth=1
    )
    assert "resampled" in model.load_report.adapted["pos_embed"] and "mask_token" in model.load_report.dropped
    assert model(torch.randn(1, 2, 28, 42))[0].shape == (1, 7, 768)


def test_dofa_trains_with_upernet(dofa_file):
    path, _ = dofa_file
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone="dofa_small_patch16_224",
        decoder="UperNetDecoder",
        num_classes=3,
        backbone_bands=S2,
        backbone_ckpt_path=str(path),
        backbone_depth=4,
        decoder_kwargs={"channels": 8, "pool_scales": [1, 2]},
    )
    out = model(torch.randn(2, 4, 64, 64)).output
    assert out.shape == (2, 3, 64, 64)
    out.square().mean().backward()
    assert model.encoder.patch_embed.weight_generator.weight_tokens.grad.abs().sum() > 0


@pytest.mark.slow  # converting DOFA's weight-generator transformer takes a minute or more on a busy CPU
def test_dofa_onnx_export_matches_onnxruntime(tmp_path):
    from geoft.export import export_onnx
    from geoft.export_verify import verify_onnx

    torch.manual_seed(0)
    model = (
        EncoderDecoderFactory()
        .build_model(
            "segmentation",
            backbone="dofa_small_patch16_224",
            decoder="FCNDecoder",
            num_classes=2,
            backbone_bands=S2,
            backbone_depth=1,
            decoder_kwargs={"channels": 8},
        )
        .eval()
    )
    x = torch.randn(1, 4, 64, 64)
    onnx_path = export_onnx(model, tmp_path / "dofa.onnx", x, dynamic_hw=False)
    assert verify_onnx(model, onnx_path, [x]) < 1e-3
