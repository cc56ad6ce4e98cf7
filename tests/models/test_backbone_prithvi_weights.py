"""Loading Prithvi checkpoints in the published MAE layout: strictness, report, bands, offline."""

from __future__ import annotations

import time

import pytest
import torch

from geoft.errors import CheckpointError, ConfigError, OfflineError
from geoft.models.backbones import downloads
from geoft.models.backbones.bands import PRITHVI_BANDS
from geoft.models.backbones.prithvi import PRITHVI_VARIANTS, build_prithvi
from geoft.models.backbones.prithvi_embed import sincos_3d
from geoft.models.backbones.prithvi_weights import load_prithvi_checkpoint

ALL = sorted(PRITHVI_VARIANTS)


def published_layout(
    variant: str, depth: int = 1, frames: int = 4, grid: int = 14, v1_flat: bool = False
) -> dict:
    """A checkpoint laid out like the published files (encoder + MAE decoder), random values."""
    cfg = PRITHVI_VARIANTS[variant]
    encoder = build_prithvi(variant, depth=depth, img_size=32 if cfg.patch_size[1] == 16 else 28)
    torch.manual_seed(0)
    enc = {k: torch.randn_like(v) for k, v in encoder.state_dict().items()}
    table = sincos_3d(cfg.embed_dim, (frames, grid, grid))
    enc["pos_embed"] = torch.cat([torch.zeros(1, cfg.embed_dim), table]).unsqueeze(0)
    d, p = 64, cfg.patch_size
    dec = {
        "decoder_embed.weight": torch.randn(d, cfg.embed_dim),
        "decoder_embed.bias": torch.randn(d),
        "mask_token": torch.randn(1, 1, d),
        "decoder_pos_embed": torch.randn(1, 1 + frames * grid * grid, d),
        "decoder_blocks.0.norm1.weight": torch.randn(d),
        "decoder_norm.weight": torch.randn(d),
        "decoder_pred.weight": torch.randn(p[0] * p[1] * p[2] * 6, d),
    }
    if cfg.coords_encoding:
        dec["temporal_embed_dec.scale"] = torch.tensor([0.1])
        dec["location_embed_dec.scale"] = torch.tensor([0.1])
    if v1_flat:
        return {**enc, **dec}
    return {**{f"encoder.{k}": v for k, v in enc.items()}, **{f"decoder.{k}": v for k, v in dec.items()}}


@pytest.mark.parametrize("variant", ALL)
def test_published_layout_loads_strictly_with_report(variant):
    state = published_layout(variant)
    model = build_prithvi(variant, depth=1, img_size=2 * PRITHVI_VARIANTS[variant].patch_size[1])
    report = load_prithvi_checkpoint(model, state, PRITHVI_BANDS, name=variant)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f"encoder.{key}"]), key
    assert model.load_report is report
    assert set(report.loaded) == set(model.state_dict())
    assert "decoder.mask_token" in report.dropped and "decoder.decoder_pred.weight" in report.dropped
    assert "recomputed" in report.dropped["encoder.pos_embed"]
    assert any("equals geoft's sin-cos table" in note for note in report.notes)
    assert "Dropped" in report.summary()


def test_ckpt_path_loads_a_file(tmp_path, caplog):
    state = published_layout("prithvi_eo_v2_tiny_tl")
    path = tmp_path / "ckpt.pt"
    torch.save(state, path)
    with caplog.at_level("INFO"):
        model = build_prithvi("prithvi_eo_v2_tiny_tl", ckpt_path=str(path), depth=1, img_size=32)
    assert torch.equal(model.temporal_embed_enc.scale, state["encoder.temporal_embed_enc.scale"])
    assert model.load_report.source == str(path)
    assert "MAE decoder" in caplog.text


def test_v1_flat_layout_loads(tmp_path):
    state = published_layout("prithvi_eo_v1_100", frames=3, v1_flat=True)
    torch.save(state, tmp_path / "v1.pt")
    model = build_prithvi(
        "prithvi_eo_v1_100", ckpt_path=tmp_path / "v1.pt", depth=1, img_size=32, num_frames=3
    )
    assert torch.equal(model.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])
    assert {"mask_token", "decoder_embed.weight", "pos_embed"} <= set(model.load_report.dropped)


def test_wrapped_checkpoints_are_unwrapped(tmp_path):
    state = published_layout("prithvi_eo_tiny")
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "lightning.ckpt"
    )
    model = build_prithvi("prithvi_eo_tiny", ckpt_path=tmp_path / "lightning.ckpt", depth=1, img_size=32)
    assert torch.equal(model.cls_token, state["encoder.cls_token"])


def test_shape_mismatch_names_the_key(tmp_path):
    state = published_layout("prithvi_eo_tiny")
    state["encoder.blocks.0.attn.qkv.weight"] = torch.randn(10, 256)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(
        CheckpointError, match=r"blocks\.0\.attn\.qkv\.weight: file \[10, 256\] vs model \[768, 256\]"
    ):
        build_prithvi("prithvi_eo_tiny", ckpt_path=tmp_path / "bad.pt", depth=1, img_size=32)


def test_missing_and_unexpected_keys_are_errors(tmp_path):
    state = published_layout("prithvi_eo_tiny")
    del state["encoder.norm.weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"lacks 1 tensors .*: norm\.weight"):
        build_prithvi("prithvi_eo_tiny", ckpt_path=tmp_path / "missing.pt", depth=1, img_size=32)
    deeper = published_layout("prithvi_eo_tiny", depth=2)
    torch.save(deeper, tmp_path / "deeper.pt")
    with pytest.raises(CheckpointError, match=r"does not have: blocks\.1\."):
        build_prithvi("prithvi_eo_tiny", ckpt_path=tmp_path / "deeper.pt", depth=1, img_size=32)


def test_tl_checkpoint_into_plain_model_drops_coords_and_plain_into_tl_fails():
    plain = build_prithvi("prithvi_eo_v1_100", depth=1, img_size=32)
    report = load_prithvi_checkpoint(plain, published_layout("prithvi_eo_v2_100_tl"), PRITHVI_BANDS)
    assert "built without it" in report.dropped["encoder.temporal_embed_enc.scale"]
    tl = build_prithvi("prithvi_eo_v2_100_tl", depth=1, img_size=32)
    with pytest.raises(CheckpointError, match="temporal_embed_enc.scale"):
        load_prithvi_checkpoint(tl, published_layout("prithvi_eo_v1_100"), PRITHVI_BANDS)


def test_coords_encoding_override_drops_the_unused_encoding():
    state = published_layout("prithvi_eo_v2_tiny_tl")
    model = build_prithvi("prithvi_eo_v2_tiny_tl", depth=1, img_size=32, coords_encoding=["time"])
    report = load_prithvi_checkpoint(model, state, PRITHVI_BANDS)
    assert model.temporal_encoding and not model.location_encoding
    assert "encoder.location_embed_enc.scale" in report.dropped
    assert "encoder.temporal_embed_enc.scale" not in report.dropped


def test_band_subset_copies_matching_slices_and_initialises_new_ones(tmp_path):
    state = published_layout("prithvi_eo_tiny")
    torch.save(state, tmp_path / "c.pt")
    model = build_prithvi(
        "prithvi_eo_tiny",
        ckpt_path=tmp_path / "c.pt",
        depth=1,
        img_size=32,
        bands=["RED", "nir_narrow", "extra"],
    )
    ckpt_w = state["encoder.patch_embed.proj.weight"]  # [D, 6, 1, 16, 16]; bands B, G, R, NIR, SW1, SW2
    w = model.patch_embed.proj.weight
    assert w.shape[1] == 3 and model.in_chans == 3
    assert torch.equal(w[:, 0], ckpt_w[:, 2]) and torch.equal(w[:, 1], ckpt_w[:, 3])
    assert all(not torch.allclose(w[:, 2], ckpt_w[:, i]) for i in range(6))
    assert torch.isfinite(w[:, 2]).all() and 0 < float(w[:, 2].detach().std()) < 0.1  # a fresh Xavier init
    how = model.load_report.adapted["patch_embed.proj.weight"]
    assert "RED<-2" in how and "NIR_NARROW<-3" in how and "extra" in how
    assert model.mean == [1433.0, 2734.0, None]
    assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 5, 256)


def test_custom_pretrained_bands(tmp_path):
    state = published_layout("prithvi_eo_tiny")
    torch.save(state, tmp_path / "c.pt")
    model = build_prithvi(
        "prithvi_eo_tiny",
        ckpt_path=tmp_path / "c.pt",
        depth=1,
        img_size=32,
        pretrained_bands=[0, 1, 2, 3, 4, "VV"],
        bands=["VV", 3],
    )
    w = state["encoder.patch_embed.proj.weight"]
    assert torch.equal(model.patch_embed.proj.weight[:, 0], w[:, 5])
    assert torch.equal(model.patch_embed.proj.weight[:, 1], w[:, 3])
    assert model.mean == [None, None]  # statistics are those of the HLS bands only
    with pytest.raises(CheckpointError, match="pretrained_bands lists 2"):
        build_prithvi(
            "prithvi_eo_tiny",
            ckpt_path=tmp_path / "c.pt",
            depth=1,
            img_size=32,
            pretrained_bands=["RED", "BLUE"],
        )


def test_unreadable_or_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        build_prithvi("prithvi_eo_tiny", ckpt_path=tmp_path / "nope.pt", depth=1)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="Cannot read weights"):
        build_prithvi("prithvi_eo_tiny", ckpt_path=tmp_path / "junk.pt", depth=1)
    torch.save({"epoch": 1}, tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="no state dict"):
        build_prithvi("prithvi_eo_tiny", ckpt_path=tmp_path / "empty.pt", depth=1)


def test_offline_pretrained_fails_fast_naming_ckpt_path(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(OfflineError) as info:
        build_prithvi("prithvi_eo_v2_300_tl", pretrained=True, depth=1, img_size=32)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "ckpt_path" in message and "Prithvi_EO_V2_300M_TL.pt" in message
    assert "ibm-nasa-geospatial/Prithvi-EO-2.0-300M-TL" in message


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(downloads, "host_reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(OfflineError, match="unreachable"):
        build_prithvi("prithvi_eo_v1_100", pretrained=True, depth=1, img_size=32)


def test_pretrained_uses_the_hub_cache(monkeypatch, tmp_path):
    """A file already in the Hugging Face cache loads without any network access."""
    import huggingface_hub

    state = published_layout("prithvi_eo_v2_tiny_tl")
    snapshot = tmp_path / "models--ibm-nasa-geospatial--Prithvi-EO-2.0-tiny-TL" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    torch.save(state, snapshot / "Prithvi_EO_V2_tiny_TL.pt")
    refs = snapshot.parents[1] / "refs"
    refs.mkdir()
    (refs / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build_prithvi("prithvi_eo_v2_tiny_tl", pretrained=True, depth=1, img_size=32)
    assert torch.equal(model.cls_token, state["encoder.cls_token"])
    assert "huggingface.co/ibm-nasa-geospatial/Prithvi-EO-2.0-tiny-TL" in model.load_report.source


def test_tiny_has_no_published_weights():
    with pytest.raises(ConfigError, match="no published weights"):
        build_prithvi("prithvi_eo_tiny", pretrained=True, depth=1)
