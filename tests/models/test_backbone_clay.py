"""Clay v1 / v1.5 encoders: published checkpoint layout, wavelengths from band names, offline, models."""

from __future__ import annotations

import time
import warnings

import pytest
import torch

from geoft.errors import CheckpointError, ConfigError, OfflineError
from geoft.models.backbones.bands import Band
from geoft.models.backbones.clay import CLAY_DEFAULT_BANDS, build_clay
from geoft.models.backbones.clay_embed import band_wavelengths
from geoft.models.backbones.clay_weights import geoft_to_published
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory

_EMBED = [
    "patch_embedding.weight_generator.encoder.layers.0." + k
    for k in (
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
        "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
    )
] + [
    "patch_embedding.weight_generator." + k
    for k in ("fc_weight.weight", "fc_weight.bias", "fc_bias.weight", "fc_bias.bias", "weight_tokens", "bias_token")
] + [f"patch_embedding.fclayer.{k}" for k in ("l1.weight", "l1.bias", "l2.weight", "l2.bias")]  # fmt: skip
_LAYER = ["0.norm.weight", "0.norm.bias", "0.to_qkv.weight", "0.to_out.weight", "1.net.0.weight",
          "1.net.0.bias", "1.net.1.weight", "1.net.1.bias", "1.net.3.weight", "1.net.3.bias"]  # fmt: skip


def published_encoder_keys(depth: int) -> set[str]:
    """Encoder keys of Clay's published checkpoints (under ``model.encoder.``), written out by hand."""
    layers = {f"transformer.layers.{i}.{k}" for i in range(depth) for k in _LAYER}
    return {"cls_token", "transformer.norm.weight", "transformer.norm.bias", *_EMBED} | layers


def published_checkpoint(variant: str = "clay_mae_tiny", depth: int = 2, seed: int = 0) -> dict:
    """A Lightning checkpoint in the published layout: encoder, MAE decoder, teacher and projection."""
    torch.manual_seed(seed)
    model = build_clay(variant, depth=depth, img_size=32)
    state = {f"model.encoder.{geoft_to_published(k)}": v.clone() for k, v in model.state_dict().items()}
    state["model.decoder.transformer.layers.0.0.norm.weight"] = torch.ones(96)
    state["model.decoder.embed_to_pixels.weight_generator.fc_weight.weight"] = torch.zeros(6144, 128)
    state["model.teacher.blocks.0.norm1.weight"] = torch.ones(768)
    state["model.proj.weight"] = torch.zeros(768, model.embed_dim)
    return {"epoch": 3, "global_step": 120, "state_dict": state}


def test_published_layout_has_the_clay_key_names_and_count():
    keys = {
        k.removeprefix("model.encoder.")
        for k in published_checkpoint()["state_dict"]
        if ".encoder." in k[:15]
    }
    assert keys == published_encoder_keys(2)
    assert len(published_encoder_keys(24)) == 265  # the v1.5 large encoder's tensor count


def test_strict_load_reports_what_the_pretraining_model_drops(tmp_path):
    ckpt = published_checkpoint(seed=1)
    torch.save(ckpt, tmp_path / "clay-v1.5.ckpt")
    model = build_clay("clay_mae_tiny", depth=2, img_size=32, ckpt_path=tmp_path / "clay-v1.5.ckpt")
    report = model.load_report
    assert len(report.loaded) == len(published_encoder_keys(2))
    assert report.dropped["model.decoder.transformer.layers.0.0.norm.weight"].startswith("MAE decoder")
    assert "teacher" in report.dropped["model.teacher.blocks.0.norm1.weight"]
    assert "representation loss" in report.dropped["model.proj.weight"]
    qkv = ckpt["state_dict"]["model.encoder.transformer.layers.1.0.to_qkv.weight"]
    assert torch.equal(model.blocks[1].attn.qkv.weight, qkv)
    assert torch.equal(model.norm.weight, ckpt["state_dict"]["model.encoder.transformer.norm.weight"])


def test_load_is_strict_about_missing_unknown_and_mismatched_tensors(tmp_path):
    state = published_checkpoint()["state_dict"]
    missing = {k: v for k, v in state.items() if "layers.1.0.to_qkv" not in k}
    with pytest.raises(CheckpointError, match="lacks 1 tensors"):
        build_clay("clay_mae_tiny", depth=2, ckpt_path=_save(tmp_path / "a.ckpt", missing))
    with pytest.raises(CheckpointError, match="neither Clay encoder"):
        build_clay(
            "clay_mae_tiny",
            depth=2,
            ckpt_path=_save(tmp_path / "b.ckpt", {**state, "mystery.w": torch.ones(1)}),
        )
    with pytest.raises(CheckpointError, match="does not have"):  # a 2-block file into a 1-block model
        build_clay("clay_mae_tiny", depth=1, ckpt_path=_save(tmp_path / "c.ckpt", state))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        build_clay("clay_mae_small", depth=2, ckpt_path=_save(tmp_path / "d.ckpt", state))


def _save(path, state):
    torch.save({"state_dict": state}, path)
    return path


def test_wavelengths_come_from_band_names_in_either_spelling():
    bands, waves = band_wavelengths(["blue", "NIR_NARROW", "swir16", "Swir 2", "nir", "VV"])
    assert bands == [Band.BLUE, Band.NIR_NARROW, Band.SWIR_1, Band.SWIR_2, Band.NIR_BROAD, Band.VV]
    assert waves == [0.493, 0.865, 1.61, 2.19, 0.842, 3.5]  # Clay's nir is Sentinel-2 B08
    model = build_clay("clay_mae_tiny", depth=1, bands=["RED", "swir22"])
    assert model.in_chans == 2 and model.waves.tolist() == pytest.approx([0.665, 2.19])
    assert model.mean == [1552.0, 1835.0]
    assert build_clay("clay_mae_tiny", depth=1).bands == list(CLAY_DEFAULT_BANDS)
    with pytest.raises(ConfigError, match="wavelength.*NDVI"):
        build_clay("clay_mae_tiny", depth=1, bands=["RED", "NDVI"])
    custom = build_clay("clay_mae_tiny", depth=1, bands=["RED", "NDVI"], wavelengths=[0.665, 0.75])
    assert custom.waves.tolist() == pytest.approx([0.665, 0.75])
    with pytest.raises(ConfigError, match="twice"):
        build_clay("clay_mae_tiny", depth=1, bands=["swir16", "SWIR_1"])


def test_the_same_weights_take_any_band_set_and_gsd_and_metadata_matter():
    torch.manual_seed(0)
    model = build_clay("clay_mae_tiny", depth=1, bands=["BLUE", "GREEN", "RED"]).eval()
    x = torch.randn(2, 3, 16, 24)  # non-square grids work
    with torch.no_grad():
        base = model(x)[-1]
        assert base.shape == (2, 1 + 2 * 3, 192)
        model.gsd = 30.0
        assert not torch.allclose(model(x)[-1], base)
        model.gsd = 10.0
        located = model(x, location_coords=torch.tensor([[40.0, -105.0], [0.0, 10.0]]))[-1]
        assert not torch.allclose(located, base)
        dated = model(x, temporal_coords=torch.tensor([[[2020.0, 100.0]], [[2021.0, 5.0]]]))[-1]
        assert not torch.allclose(dated, base)
    with pytest.raises(ConfigError, match="location_coords"):
        model(x, location_coords=torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="multiple of Clay's patch size"):
        model(torch.randn(1, 3, 20, 16))


def test_offline_pretrained_fails_fast_naming_ckpt_path(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(OfflineError) as info:
        build_clay("clay_v1_base", pretrained=True, depth=1)
    assert time.monotonic() - start < 5
    assert "ckpt_path" in str(info.value) and "made-with-clay/Clay-legacy" in str(info.value)
    with pytest.raises(OfflineError, match="clay-v1.5.ckpt"):
        build_clay("clay_mae_large", pretrained=True, depth=1)
    with pytest.raises(ConfigError, match="no published weights"):
        build_clay("clay_mae_small", pretrained=True)


@pytest.mark.parametrize(
    ("decoder", "args"),
    [
        ("UperNetDecoder", {"decoder_channels": 16}),
        ("FCNDecoder", {}),
        ("UNetDecoder", {"decoder_channels": [32, 16, 8, 4]}),
    ],
)
def test_trains_through_encoder_decoder_factory(decoder, args):
    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone="clay_mae_tiny",
        decoder=decoder,
        num_classes=3,
        backbone_depth=2 if decoder == "FCNDecoder" else 4,
        backbone_bands=["BLUE", "GREEN", "RED", "NIR_NARROW"],
        **args,
    )
    x = torch.randn(2, 4, 30, 40)  # padded to multiples of 8 inside the model
    out = model(x).output
    assert out.shape == (2, 3, 30, 40)
    out.mean().backward()
    assert model.encoder.patch_embedding.weight_generator.weight_tokens.grad is not None
    assert model.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_clay1_5_model_factory_name_builds_through_encoder_decoder():
    from geoft.registry import MODEL_FACTORY_REGISTRY

    factory = MODEL_FACTORY_REGISTRY.build("Clay1_5ModelFactory")
    with pytest.warns(UserWarning, match="mask_ratio, teacher"):
        model = factory.build_model(
            "segmentation",
            backbone="clay_mae_tiny",
            decoder="FCNDecoder",
            num_classes=2,
            platform="landsat-c2l2-sr",
            mask_ratio=0.75,
            teacher="samvit_base_patch16.sa1b",
            dim=192,
            backbone_depth=1,
        )
    assert model.encoder.gsd == 30.0 and model.encoder.waves.tolist() == pytest.approx(
        [0.65, 0.56, 0.48, 0.86, 1.6, 2.2]
    )
    assert model(torch.randn(1, 6, 16, 16)).output.shape == (1, 2, 16, 16)
    with pytest.raises(ConfigError, match="dim=384 does not match"):
        factory.build_model(
            "segmentation", backbone="clay_mae_tiny", decoder="FCNDecoder", num_classes=2, dim=384
        )
    with pytest.raises(ConfigError, match="builds Clay encoders"):
        factory.build_model("segmentation", backbone="prithvi_eo_tiny", decoder="FCNDecoder", num_classes=2)


@pytest.mark.slow
def test_exports_to_onnx_matching_onnxruntime(tmp_path):
    from geoft.export import export_onnx
    from geoft.export_verify import verify_onnx

    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation", backbone="clay_mae_tiny", decoder="FCNDecoder", num_classes=3, backbone_depth=1,
        backbone_bands=["RED", "GREEN", "BLUE"],
    ).eval()  # fmt: skip
    example = torch.randn(1, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_onnx(model, tmp_path / "clay.onnx", example)
    assert verify_onnx(model, path, [example, torch.randn(2, 3, 40, 24)]) < 1e-3
