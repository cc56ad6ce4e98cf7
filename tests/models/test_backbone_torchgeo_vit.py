"""torchgeo ViTs (SSL4EO): strict loading of the published layout, band selection, offline errors,
the tokens contract, training through EncoderDecoderFactory and ONNX export."""

from __future__ import annotations

import pytest
import timm
import torch

from geoft.errors import ConfigError, OfflineError
from geoft.models.backbones import downloads
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.registry import BACKBONE_REGISTRY

VIT = "ssl4eos12_vit_small_patch16_224_sentinel2_all_dino"


@pytest.fixture(scope="module")
def vit_file(tmp_path_factory):
    """The enum's layout: a whole timm ViT-S/16 (head included) for the 13 Sentinel-2 bands."""
    torch.manual_seed(0)
    state = timm.create_model("vit_small_patch16_224", in_chans=13, num_classes=10).state_dict()
    path = tmp_path_factory.mktemp("vit") / "vit_small_patch16_224_sentinel2_all_dino.pth"
    torch.save(state, path)
    return path, state


def test_vit_loads_strictly_and_returns_tokens(vit_file):
    path, state = vit_file
    model = BACKBONE_REGISTRY.build(VIT, ckpt_path=path, depth=2).eval()
    assert model.output_format == "tokens" and model.patch_size == 16 and model.out_channels == [384, 384]
    assert torch.equal(model.model.blocks[1].mlp.fc2.weight, state["blocks.1.mlp.fc2.weight"])
    dropped = model.load_report.dropped
    assert dropped["head.weight"].startswith("classifier head") and dropped[
        "blocks.2.attn.qkv.weight"
    ].startswith("block beyond depth=2")
    tokens = model(torch.randn(1, 13, 64, 48))
    assert [tuple(t.shape) for t in tokens] == [(1, 1 + 4 * 3, 384)] * 2


def test_vit_band_selection(vit_file):
    path, state = vit_file
    model = BACKBONE_REGISTRY.build(VIT, ckpt_path=path, depth=1, bands=["RED", "NIR_BROAD", "VV"])
    w, src = model.model.patch_embed.proj.weight, state["patch_embed.proj.weight"]
    assert torch.equal(w[:, 0], src[:, 3]) and torch.equal(w[:, 1], src[:, 7])
    assert "VV initialised new" in model.load_report.adapted["patch_embed.proj.weight"]


def test_wrong_weights_and_offline(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="not vit_small_patch16_224"):
        BACKBONE_REGISTRY.build(VIT, weights="ViTBase16_Weights.SENTINEL2_ALL_MAE")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(downloads, "host_reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(OfflineError, match="ckpt_path"):
        BACKBONE_REGISTRY.build(VIT, pretrained=True, depth=1)


@pytest.mark.parametrize(
    ("decoder", "kwargs"),
    [("UperNetDecoder", {"channels": 8, "pool_scales": [1, 2]}), ("FCNDecoder", {"channels": 8})],
)
def test_trains_through_encoder_decoder_factory(vit_file, decoder, kwargs):
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone=VIT,
        decoder=decoder,
        num_classes=3,
        backbone_ckpt_path=str(vit_file[0]),
        backbone_bands=["RED", "GREEN", "BLUE"],
        backbone_depth=4,
        decoder_kwargs=kwargs,
    )
    out = model(torch.randn(2, 3, 64, 64)).output
    assert out.shape == (2, 3, 64, 64)
    out.square().mean().backward()
    assert model.encoder.model.patch_embed.proj.weight.grad.abs().sum() > 0


def test_onnx_export_matches_onnxruntime(tmp_path):
    from geoft.export import export_onnx
    from geoft.export_verify import verify_onnx

    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone=VIT,
        decoder="FCNDecoder",
        num_classes=2,
        decoder_kwargs={"channels": 8},
        backbone_depth=2,
    )
    model.eval()
    x = torch.randn(1, 13, 64, 64)
    path = export_onnx(model, tmp_path / "vit.onnx", x, dynamic_hw=False)
    assert verify_onnx(model, path, [x]) < 1e-3
