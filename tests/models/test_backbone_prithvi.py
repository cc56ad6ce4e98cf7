"""Prithvi-EO encoders: every variant at reduced depth, shapes, coords, geometry, bf16."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from geoft.errors import ConfigError
from geoft.models.backbones.prithvi import PRITHVI_VARIANTS, build_prithvi
from geoft.models.backbones.prithvi_embed import sincos_1d, sincos_3d
from geoft.registry import BACKBONE_REGISTRY

ALL = sorted(PRITHVI_VARIANTS)
TL = [v for v in ALL if v.endswith("_tl")]


def _img(variant: str) -> int:
    return 2 * PRITHVI_VARIANTS[variant].patch_size[1]  # 32 for patch 16, 28 for patch 14


def test_catalog_lists_every_variant():
    expected = {
        "prithvi_eo_tiny",
        "prithvi_eo_v1_100",
        "prithvi_eo_v2_300",
        "prithvi_eo_v2_600",
        "prithvi_eo_v2_tiny_tl",
        "prithvi_eo_v2_100_tl",
        "prithvi_eo_v2_300_tl",
        "prithvi_eo_v2_600_tl",
    }
    assert expected <= set(BACKBONE_REGISTRY.names())


def test_published_hyper_parameters():
    v = PRITHVI_VARIANTS
    assert (
        v["prithvi_eo_v1_100"].embed_dim,
        v["prithvi_eo_v1_100"].depth,
        v["prithvi_eo_v1_100"].num_heads,
    ) == (
        768,
        12,
        12,
    )
    assert (v["prithvi_eo_v2_300"].embed_dim, v["prithvi_eo_v2_300"].depth) == (1024, 24)
    assert (v["prithvi_eo_v2_600_tl"].embed_dim, v["prithvi_eo_v2_600_tl"].depth) == (1280, 32)
    assert v["prithvi_eo_v2_600"].patch_size == (1, 14, 14)
    assert v["prithvi_eo_v2_tiny_tl"].embed_dim == 192
    assert all(v[n].coords_encoding == ("time", "location") for n in TL)
    assert not v["prithvi_eo_v2_300"].coords_encoding


@pytest.mark.parametrize("variant", ALL)
def test_every_variant_runs_on_single_and_multi_frame_input(variant):
    size = _img(variant)
    model = BACKBONE_REGISTRY.build(variant, depth=1, img_size=size, num_frames=2)
    cfg = PRITHVI_VARIANTS[variant]
    assert model.output_format == "tokens"
    assert model.patch_size == cfg.patch_size and model.embed_dim == cfg.embed_dim
    assert model.out_channels == [cfg.embed_dim]
    with torch.no_grad():
        single = model(torch.randn(2, 6, size, size))
        multi = model(torch.randn(2, 6, 2, size, size))
    assert [tuple(o.shape) for o in single] == [(2, 1 + 4, cfg.embed_dim)]
    assert [tuple(o.shape) for o in multi] == [(2, 1 + 2 * 4, cfg.embed_dim)]
    assert torch.isfinite(multi[0]).all()


@pytest.mark.parametrize("variant", TL)
def test_tl_variants_use_time_and_location(variant):
    size = _img(variant)
    model = build_prithvi(variant, depth=1, img_size=size, num_frames=2).eval()
    x = torch.randn(1, 6, 2, size, size)
    dates = torch.tensor([[[2020.0, 120.0], [2020.0, 200.0]]])
    where = torch.tensor([[46.5, 7.4]])
    with torch.no_grad():
        plain = model(x)[0]
        timed = model(x, temporal_coords=dates)[0]
        located = model(x, location_coords=where)[0]
        both = model(x, temporal_coords=dates, location_coords=where)[0]
    assert both.shape == plain.shape
    for out in (timed, located, both):
        assert not torch.allclose(out, plain)
    with pytest.raises(ConfigError, match=r"temporal_coords must be \[B, T, 2\]"):
        model(x, temporal_coords=dates[:, :1])
    with pytest.raises(ConfigError, match=r"location_coords must be \[B, 2\]"):
        model(x, location_coords=where[:, :1])


def test_coords_on_a_model_without_coords_encoding_warn():
    model = build_prithvi("prithvi_eo_tiny", depth=1, img_size=32)
    with pytest.warns(UserWarning, match="_tl variant"):
        model(torch.randn(1, 6, 32, 32), location_coords=torch.zeros(1, 2))


def test_time_encoding_depends_on_each_frame_date():
    model = build_prithvi("prithvi_eo_v2_tiny_tl", depth=1, img_size=32, num_frames=2).eval()
    x = torch.randn(1, 6, 2, 32, 32)
    a = torch.tensor([[[2020.0, 10.0], [2020.0, 200.0]]])
    b = torch.tensor([[[2020.0, 10.0], [2021.0, 200.0]]])
    with torch.no_grad():
        assert not torch.allclose(model(x, temporal_coords=a)[0], model(x, temporal_coords=b)[0])


def test_non_square_sizes_and_other_frame_counts():
    model = build_prithvi("prithvi_eo_tiny", depth=1, img_size=32, num_frames=1)
    with torch.no_grad():
        out = model(torch.randn(1, 6, 3, 48, 80))[0]
    assert out.shape == (1, 1 + 3 * 3 * 5, 256)
    model600 = build_prithvi("prithvi_eo_v2_600", depth=1, img_size=28)
    with torch.no_grad():
        assert model600(torch.randn(1, 6, 42, 70))[0].shape == (1, 1 + 3 * 5, 1280)


@pytest.mark.parametrize("shape", [(1, 6, 33, 32), (1, 6, 32, 47)])
def test_sizes_not_multiple_of_patch_raise(shape):
    model = build_prithvi("prithvi_eo_tiny", depth=1, img_size=32)
    with pytest.raises(ConfigError, match="multiple of the patch size"):
        model(torch.randn(*shape))


def test_wrong_channel_count_raises():
    model = build_prithvi("prithvi_eo_tiny", depth=1, img_size=32, bands=["RED", "GREEN", "BLUE"])
    with pytest.raises(ConfigError, match="Input has 6 channels but the backbone was built for 3"):
        model(torch.randn(1, 6, 32, 32))


def test_position_table_layout():
    """Channels: 6/16 width, 6/16 height, 4/16 time; each 1D part is [sin | cos]."""
    dim = 32
    table = sincos_3d(dim, (2, 3, 4))
    assert table.shape == (24, dim)
    # token (t=1, h=2, w=3) sits at index 1*12 + 2*4 + 3
    token = table[1 * 12 + 2 * 4 + 3]
    w_part, h_part, t_part = token[:12], token[12:24], token[24:]
    omega_w = 1.0 / 10000 ** (torch.arange(6, dtype=torch.float64) / 6)
    assert torch.allclose(w_part[:6].double(), torch.sin(3 * omega_w), atol=1e-6)
    assert torch.allclose(w_part[6:].double(), torch.cos(3 * omega_w), atol=1e-6)
    assert torch.allclose(h_part, sincos_1d(12, torch.tensor([2.0]))[0])
    assert torch.allclose(t_part, sincos_1d(8, torch.tensor([1.0]))[0])
    assert math.isclose(float(t_part[4]), math.cos(1.0), abs_tol=1e-6)


def test_positions_are_recomputed_for_each_grid():
    model = build_prithvi("prithvi_eo_tiny", depth=1, img_size=32)
    assert torch.equal(model.position_embedding((1, 2, 2), torch.device("cpu")), model.pos_embed)
    other = model.position_embedding((2, 3, 5), torch.device("cpu"))
    assert torch.allclose(other[0], sincos_3d(256, (2, 3, 5)))
    assert "pos_embed" not in model.state_dict()


def test_out_indices_select_blocks_and_last_is_normed():
    model = build_prithvi("prithvi_eo_tiny", depth=3, img_size=32, out_indices=[0, -1]).eval()
    assert model.out_indices == [0, 2] and model.out_channels == [256, 256]
    with torch.no_grad():
        first, last = model(torch.randn(2, 6, 32, 32))
    assert torch.allclose(last.mean(-1), torch.zeros_like(last.mean(-1)), atol=1e-4)
    assert not torch.allclose(first.mean(-1), torch.zeros_like(first.mean(-1)), atol=1e-2)
    full = build_prithvi("prithvi_eo_tiny", depth=3, img_size=32)
    assert full.out_indices == [0, 1, 2]
    with pytest.raises(ConfigError, match="out_indices entry 3"):
        build_prithvi("prithvi_eo_tiny", depth=3, out_indices=[3])


def test_drop_path_increases_to_the_given_rate_and_freeze():
    model = build_prithvi("prithvi_eo_tiny", depth=3, img_size=32, drop_path=0.2)
    rates = [float(getattr(b.drop_path1, "drop_prob", 0.0)) for b in model.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2])
    assert model.freeze() is model
    assert not any(p.requires_grad for p in model.parameters())


def test_attention_is_fused_sdpa():
    model = build_prithvi("prithvi_eo_tiny", depth=1, img_size=32)
    assert all(block.attn.fused_attn for block in model.blocks)


def test_bf16_autocast_forward_on_cpu():
    model = build_prithvi("prithvi_eo_v2_tiny_tl", depth=2, img_size=32, num_frames=2).eval()
    x = torch.randn(2, 6, 2, 32, 32)
    coords = {
        "temporal_coords": torch.tensor([[[2019.0, 30.0], [2019.0, 90.0]]] * 2),
        "location_coords": torch.zeros(2, 2),
    }
    with torch.no_grad():
        ref = model(x, **coords)[-1]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x, **coords)[-1]
    assert low.shape == ref.shape and torch.isfinite(low).all()
    assert torch.allclose(low.float(), ref, atol=0.15)


def test_bf16_model_without_autocast():
    model = build_prithvi("prithvi_eo_tiny", depth=1, img_size=32).to(torch.bfloat16).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 6, 32, 32, dtype=torch.bfloat16))[0]
    assert out.dtype == torch.bfloat16


def test_unknown_argument_names_it():
    with pytest.raises(ConfigError, match=r"'img_sz' \(did you mean 'img_size'\?\)"):
        BACKBONE_REGISTRY.build("prithvi_eo_tiny", img_sz=64)


def test_bad_settings_raise_config_errors():
    with pytest.raises(ConfigError, match="img_size"):
        build_prithvi("prithvi_eo_tiny", depth=1, img_size=30)
    with pytest.raises(ConfigError, match="in_chans=4 differs"):
        build_prithvi("prithvi_eo_tiny", depth=1, in_chans=4, ckpt_path="x.pt")
    model = build_prithvi("prithvi_eo_tiny", depth=1, in_chans=4, img_size=32)  # random weights: fine
    assert model.in_chans == 4 and model.bands is None


def test_no_warning_for_plain_forward():
    model = build_prithvi("prithvi_eo_v2_tiny_tl", depth=1, img_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.randn(1, 6, 32, 32))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = build_prithvi("prithvi_eo_tiny", depth=2, img_size=32)
    ckpt = build_prithvi("prithvi_eo_tiny", depth=2, img_size=32, grad_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 6, 32, 32)
    for model in (plain, ckpt):
        model(x)[-1].square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


@pytest.mark.parametrize("patch_size", [(1, 16, 16), (2, 4, 4)])
def test_patch_embedding_is_the_conv3d_and_holds_in_bf16(patch_size):
    """The tubelet projection is the Conv3d of the published weights (a remainder left out alike), and
    stays right under bf16 autocast, where oneDNN's one-frame bf16 Conv3d is wrong on AMX CPUs."""
    from geoft.models.backbones.prithvi_embed import PatchEmbed3D

    torch.manual_seed(0)
    embed = PatchEmbed3D(6, 64, patch_size)
    x = torch.randn(2, 6, 3, 35, 33)
    with torch.no_grad():
        conv = embed.proj(x).flatten(2).transpose(1, 2)
        assert torch.allclose(embed(x), conv, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = embed(x)
    assert low.dtype == torch.bfloat16 and torch.allclose(low.float(), conv, atol=0.05 * conv.abs().max())
