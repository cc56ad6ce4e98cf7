"""TerraMind encoders: published-layout loading, bands, modalities, merge methods, factory, ONNX, offline."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest
import torch

from geoft.errors import CheckpointError, ConfigError, OfflineError
from geoft.models.backbones.terramind import build_terramind
from geoft.models.backbones.terramind_modalities import RAW_MODALITIES, resolve_modalities
from geoft.models.backbones.terramind_vit import TerraMindViT, sincos_2d
from geoft.models.backbones.terramind_weights import load_terramind_checkpoint

VOCAB = {"tok_lulc@224": 4375, "tok_sen2l2a@224": 15360}


def _mlp(prefix: str, dim: int, gated: bool, g: torch.Generator) -> dict[str, torch.Tensor]:
    def rand(*shape: int) -> torch.Tensor:
        return 0.02 * torch.randn(*shape, generator=g)

    if gated:
        hidden = int(2 * 4 * dim / 3)
        return {f"{prefix}fc1.weight": rand(hidden, dim), f"{prefix}fc2.weight": rand(dim, hidden),
                f"{prefix}fc3.weight": rand(hidden, dim)}  # fmt: skip
    return {f"{prefix}fc1.weight": rand(4 * dim, dim), f"{prefix}fc1.bias": rand(4 * dim),
            f"{prefix}fc2.weight": rand(dim, 4 * dim), f"{prefix}fc2.bias": rand(dim)}  # fmt: skip


def _linear(name: str, out: int, dim: int, bias: bool, g: torch.Generator) -> dict[str, torch.Tensor]:
    tensors = {f"{name}.weight": 0.02 * torch.randn(out, dim, generator=g)}
    if bias:
        tensors[f"{name}.bias"] = 0.02 * torch.randn(out, generator=g)
    return tensors


def _norm(name: str, dim: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {f"{name}.weight": 1 + 0.1 * torch.randn(dim, generator=g), f"{name}.bias": torch.zeros(dim)}


def published_layout(
    dim: int = 64,
    depth: int = 2,
    gated: bool = False,
    tokenized: tuple[str, ...] = ("tok_lulc@224",),
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A random state dict of TerraMind's pre-training model (encoder and a 1-block decoder): the key
    names and shapes of the published ``TerraMind_v1_<size>.pt`` (checked against the reference)."""
    g = torch.Generator().manual_seed(seed)
    bias = not gated
    state: dict[str, torch.Tensor] = {"mask_token": 0.02 * torch.randn(1, 1, dim, generator=g)}
    for key, bands in RAW_MODALITIES.values():
        state[f"encoder_embeddings.{key}.mod_emb"] = 0.02 * torch.randn(1, 1, dim, generator=g)
        state[f"encoder_embeddings.{key}.pos_emb"] = sincos_2d(14, dim)
        state[f"encoder_embeddings.{key}.proj.weight"] = 0.02 * torch.randn(
            dim, 256 * len(bands), generator=g
        )
    for key in tokenized:
        for side in ("encoder", "decoder"):
            state[f"{side}_embeddings.{key}.mod_emb"] = 0.02 * torch.randn(1, 1, dim, generator=g)
            state[f"{side}_embeddings.{key}.pos_emb"] = sincos_2d(14, dim)
            state[f"{side}_embeddings.{key}.token_emb.weight"] = 0.02 * torch.randn(
                VOCAB[key], dim, generator=g
            )
        state[f"decoder_embeddings.{key}.to_logits.weight"] = 0.02 * torch.randn(VOCAB[key], dim, generator=g)
    for i in range(depth):
        p = f"encoder.{i}."
        state |= _norm(p + "norm1", dim, g) | _linear(p + "attn.qkv", 3 * dim, dim, bias, g)
        state |= _linear(p + "attn.proj", dim, dim, bias, g) | _norm(p + "norm2", dim, g)
        state |= _mlp(p + "mlp.", dim, gated, g)
    state |= _norm("encoder_norm", dim, g) | _linear("decoder_proj_context", dim, dim, True, g)
    p = "decoder.0."
    state |= _norm(p + "norm1", dim, g) | _linear(p + "self_attn.qkv", 3 * dim, dim, bias, g)
    state |= _linear(p + "self_attn.proj", dim, dim, bias, g) | _linear(p + "cross_attn.q", dim, dim, bias, g)
    state |= _linear(p + "cross_attn.kv", 2 * dim, dim, bias, g) | _linear(
        p + "cross_attn.proj", dim, dim, bias, g
    )
    state |= _norm(p + "query_norm", dim, g) | _norm(p + "context_norm", dim, g) | _norm(p + "norm2", dim, g)
    state |= _mlp(p + "mlp.", dim, gated, g) | _norm("decoder_norm", dim, g)
    return state


def small_vit(modalities=("S2L2A",), bands=None, gated=False, merge="mean", depth=2) -> TerraMindViT:
    """A 64-wide TerraMind encoder (the published code path at a test size)."""
    return TerraMindViT(
        resolve_modalities(list(modalities), bands),
        embed_dim=64, depth=depth, num_heads=2, gated_mlp=gated, bias=not gated, merge_method=merge,
    )  # fmt: skip


ALL = tuple(RAW_MODALITIES)


# -- loading --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gated", [False, True], ids=["tiny-small-mlp", "base-large-swiglu"])
def test_published_layout_loads_strictly_and_reports_what_it_drops(gated: bool) -> None:
    state = published_layout(depth=3, gated=gated)
    model = small_vit(("S2L2A", "S1GRD"), gated=gated)
    report = load_terramind_checkpoint(model, state, ALL)
    own = model.state_dict()
    assert torch.equal(own["encoder.1.attn.qkv.weight"], state["encoder.1.attn.qkv.weight"])
    assert torch.equal(
        own["encoder_embeddings.untok_sen1grd@224.mod_emb"],
        state["encoder_embeddings.untok_sen1grd@224.mod_emb"],
    )
    if gated:
        assert torch.equal(own["encoder.0.mlp.fc1_g.weight"], state["encoder.0.mlp.fc1.weight"])
        assert torch.equal(own["encoder.0.mlp.fc1_x.weight"], state["encoder.0.mlp.fc3.weight"])
    assert set(report.loaded) == set(own)
    dropped = report.dropped
    assert dropped["mask_token"].startswith("pre-training decoder")
    assert (
        "decoder.0.cross_attn.kv.weight" in dropped
        and "decoder_embeddings.tok_lulc@224.to_logits.weight" in dropped
    )
    assert "tokenizer-based" in dropped["encoder_embeddings.tok_lulc@224.token_emb.weight"]
    assert "S2L1C is not configured" in dropped["encoder_embeddings.untok_sen2l1c@224.proj.weight"]
    assert "beyond this model's depth=2" in dropped["encoder.2.attn.qkv.weight"]
    assert "bias-free LayerNorm" in dropped["encoder.0.norm1.bias"]
    assert any("equals geoft's sin-cos table" in n for n in report.notes)
    assert set(state) == set(report.dropped) | {
        k.replace("fc1_g", "fc1").replace("fc1_x", "fc3") for k in own
    }


def test_bad_checkpoints_are_checkpoint_errors(tmp_path: Path) -> None:
    state = published_layout()
    del state["encoder.1.attn.qkv.weight"]
    with pytest.raises(CheckpointError, match=r"lacks 1 tensors.*encoder\.1\.attn\.qkv\.weight"):
        load_terramind_checkpoint(small_vit(), state, ALL)
    state = published_layout()
    state["encoder.0.norm2.bias"] += 1
    with pytest.raises(CheckpointError, match="not zero"):
        load_terramind_checkpoint(small_vit(), state, ALL)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_terramind_checkpoint(small_vit(), published_layout(dim=32), ALL)
    with pytest.raises(CheckpointError, match="does not exist"):
        build_terramind("terramind_v1_tiny", ckpt_path=tmp_path / "nope.pt", depth=1)
    state = published_layout()
    del state["encoder_embeddings.untok_sen1grd@224.proj.weight"]
    with pytest.raises(CheckpointError, match="untok_sen1grd"):  # a published modality must be in the file
        load_terramind_checkpoint(small_vit(("S1GRD",)), state, ALL)


def test_ckpt_path_of_a_wrapped_file_loads_through_the_builder(tmp_path: Path) -> None:
    state = published_layout(dim=192, depth=1, tokenized=())
    torch.save({"model": state}, tmp_path / "TerraMind_v1_tiny.pt")
    model = build_terramind("terramind_v1_tiny", ckpt_path=tmp_path / "TerraMind_v1_tiny.pt", depth=1)
    assert torch.equal(model.encoder_norm.weight, state["encoder_norm.weight"])
    assert model.load_report is not None and str(tmp_path) in model.load_report.source


def test_bands_select_patch_embedding_weights_from_the_published_list() -> None:
    state = published_layout()
    model = small_vit(("S2L2A", "S1GRD"), bands={"S2L2A": ["RED", "NIR", "NDVI"], "S1GRD": ["VH"]})
    before = model.encoder_embeddings["untok_sen2l2a@224"].proj.weight.detach().clone()
    report = load_terramind_checkpoint(model, state, ALL)
    weight = model.encoder_embeddings["untok_sen2l2a@224"].proj.weight.view(64, 256, 3)
    published = state["encoder_embeddings.untok_sen2l2a@224.proj.weight"].view(64, 256, 12)
    assert torch.equal(weight[:, :, 0], published[:, :, 3])  # RED is channel 3 of S2L2A
    assert torch.equal(weight[:, :, 1], published[:, :, 8])  # NIR means NIR_NARROW (B8A), channel 8
    assert torch.equal(weight[:, :, 2], before.view(64, 256, 3)[:, :, 2])  # NDVI keeps its fresh weights
    s1 = model.encoder_embeddings["untok_sen1grd@224"].proj.weight
    assert torch.equal(
        s1, state["encoder_embeddings.untok_sen1grd@224.proj.weight"].view(64, 256, 2)[:, :, 1]
    )
    assert "new band(s) NDVI" in report.adapted["encoder_embeddings.untok_sen2l2a@224.proj.weight"]
    out = model({"S2L2A": torch.randn(1, 3, 32, 32), "S1GRD": torch.randn(1, 1, 32, 32)})
    assert out[-1].shape == (1, 4, 64)


def test_user_defined_modality_starts_fresh_and_statistics_follow_bands() -> None:
    model = build_terramind(
        "terramind_v1_tiny", modalities=["S2L2A", {"PLANET": 4}], bands={"S2L2A": ["BLUE", "FOO"]}, depth=1
    )
    assert model.mean["S2L2A"] == [1503.317, None] and model.std["S2L2A"][0] == 2141.107
    assert model.mean["PLANET"] == [None] * 4
    before = model.encoder_embeddings["PLANET"].proj.weight.detach().clone()
    report = load_terramind_checkpoint(model, published_layout(dim=192, depth=1, tokenized=()), ALL)
    assert torch.equal(model.encoder_embeddings["PLANET"].proj.weight, before)
    assert any("PLANET is not in" in n for n in report.notes)
    assert model({"PLANET": torch.randn(1, 4, 16, 16)})[0].shape == (1, 1, 192)


def test_v01_loads_s2l2a_and_starts_other_raw_modalities_fresh() -> None:
    state = {k: v for k, v in published_layout(dim=768, depth=1, gated=True, tokenized=()).items()
             if "untok_" not in k or "sen2l2a" in k}  # fmt: skip
    model = build_terramind("terramind_v01_base", modalities=["S2L2A", "S1GRD"], depth=1)
    report = load_terramind_checkpoint(model, state, ("S2L2A",))
    assert any("S1GRD is not in" in n for n in report.notes)
    assert model.mean["S2L2A"][0] == 794.311


# -- inputs and merging ---------------------------------------------------------------------------------
def test_modalities_are_named_like_the_reference_and_out_of_scope_ones_fail_clearly() -> None:
    names = [m.name for m in resolve_modalities(["s2_l2a", "untok_sen1grd@224", "RGB", "sen1rtc"], None)]
    assert names == ["S2L2A", "S1GRD", "S2RGB", "S1RTC"]
    for bad in ("LULC", "ndvi", "tok_sen2l2a@224", "caption", "coords"):
        with pytest.raises(ConfigError, match="tokenizer-based"):
            resolve_modalities([bad], None)
    with pytest.raises(ConfigError, match="unknown TerraMind modality 'FOO'"):
        resolve_modalities(["FOO"], None)
    with pytest.raises(ConfigError, match="Thinking-in-Modalities"):
        build_terramind("terramind_v1_tiny", tim_modalities=["LULC"], depth=1)
    with pytest.raises(ConfigError, match="listed twice"):
        resolve_modalities(["S2L2A", "s2l2a"], None)
    with pytest.raises(ConfigError, match="defined with 4 channels"):
        resolve_modalities([{"X": 4}], {"X": ["a", "b"]})


@pytest.mark.parametrize(
    ("merge", "shape"),
    [("mean", (2, 4, 64)), ("max", (2, 4, 64)), ("concat", (2, 4, 128)), ("dict", None), (None, (2, 8, 64))],
)
def test_merge_methods(merge: str | None, shape: tuple[int, ...] | None) -> None:
    torch.manual_seed(0)
    model = small_vit(("S2L2A", "S1GRD"), merge=merge).eval()
    x = {"S2L2A": torch.randn(2, 12, 32, 32), "S1GRD": torch.randn(2, 2, 32, 32)}
    with torch.no_grad():
        out = model(x)
        swapped = model(dict(reversed(list(x.items()))))
        single = model({"S1GRD": x["S1GRD"]})
    assert len(out) == 2 and len(model.out_channels) == 2
    if merge == "dict":
        assert list(out[-1]) == ["S2L2A", "S1GRD"] and out[-1]["S1GRD"].shape == (2, 4, 64)
        return
    assert out[-1].shape == shape and model.out_channels[0] == shape[-1]
    assert torch.equal(out[-1], swapped[-1])  # configured order, whatever the dict order
    position = model.position_embedding(2, 2, torch.device("cpu"))
    embedded = [
        model.encoder_embeddings[m.key](x[m.name]) + position + model.encoder_embeddings[m.key].mod_emb
        for m in model.modalities
    ]
    with torch.no_grad():
        tokens = model.encoder_norm(model.encoder[1](model.encoder[0](torch.cat(embedded, dim=1))))
    a, b = tokens[:, :4], tokens[:, 4:]
    expected = {
        "mean": (a + b) / 2,
        "max": torch.maximum(a, b),
        "concat": torch.cat([a, b], -1),
        None: tokens,
    }
    assert torch.allclose(out[-1], expected[merge], atol=1e-5)
    if merge == "concat":  # the missing modality's slot holds the learned token
        assert torch.equal(single[-1][..., :64], model.missing_mod_token.expand(2, 4, 64))
    elif merge is not None:
        assert single[-1].shape == shape


def test_bad_inputs_are_config_errors() -> None:
    model = small_vit(("S2L2A", "S1GRD"))
    with pytest.raises(ConfigError, match="'DEM' is not configured"):
        model({"DEM": torch.randn(1, 1, 32, 32)})
    with pytest.raises(ConfigError, match=r"S1GRD must be \[B, 2, H, W\]"):
        model({"S1GRD": torch.randn(1, 3, 32, 32)})
    with pytest.raises(ConfigError, match="multiple of the patch size"):
        model(torch.randn(1, 12, 30, 32))
    with pytest.raises(ConfigError, match="same size"):
        model({"S2L2A": torch.randn(1, 12, 32, 32), "S1GRD": torch.randn(1, 2, 48, 48)})
    with pytest.raises(ConfigError, match="no temporal_coords"):
        model(torch.randn(1, 12, 32, 32), temporal_coords=torch.zeros(1, 1, 2))
    assert model(torch.randn(1, 12, 48, 32))[0].shape == (1, 6, 64)  # a tensor is the first modality


def test_modality_dropout_keeps_one_modality_while_training() -> None:
    model = small_vit(("S2L2A", "S1GRD"), merge="dict", depth=1)
    model.modality_drop_rate = 1.0
    x = {"S2L2A": torch.randn(1, 12, 16, 16), "S1GRD": torch.randn(1, 2, 16, 16)}
    assert len(model.train()(x)[0]) == 1
    assert len(model.eval()(x)[0]) == 2


# -- registry, factory, export, offline ------------------------------------------------------------------
def _factory(decoder: str, merge: str = "mean", modalities=("S2L2A", "S1GRD"), depth: int = 4, **args):
    from geoft.models.factories.encoder_decoder import EncoderDecoderFactory

    torch.manual_seed(0)
    return EncoderDecoderFactory().build_model(
        "segmentation", backbone="terramind_v1_tiny", decoder=decoder, num_classes=3,
        backbone_modalities=list(modalities), backbone_merge_method=merge, backbone_depth=depth, **args,
    )  # fmt: skip


@pytest.mark.parametrize("merge", ["mean", "concat"])
def test_upernet_trains_on_one_two_and_a_missing_modality(merge: str) -> None:
    model = _factory("UperNetDecoder", merge, decoder_channels=16)
    assert [type(n).__name__ for n in model.neck.necks] == [
        "ReshapeTokensToImage",
        "LearnedInterpolateToPyramidal",
    ]
    s2, s1 = torch.randn(2, 12, 30, 30), torch.randn(2, 2, 30, 30)
    for x in (s2, {"S2L2A": s2, "S1GRD": s1}, {"S1GRD": s1}):
        out = model(x).output
        assert out.shape == (2, 3, 30, 30)
        out.mean().backward()
    assert model.encoder.encoder_embeddings["untok_sen1grd@224"].proj.weight.grad is not None


@pytest.mark.parametrize(
    ("decoder", "args"), [("FCNDecoder", {}), ("UNetDecoder", {"decoder_channels": [32, 16, 8, 8]})]
)
def test_fcn_and_unet_train(decoder: str, args: dict) -> None:
    model = _factory(decoder, modalities=("S2RGB",), **args)
    out = model(torch.randn(1, 3, 32, 32)).output
    assert out.shape == (1, 3, 32, 32)
    out.sum().backward()


def test_registry_names_and_cards() -> None:
    from geoft.models.backbones.catalog import backbone_cards
    from geoft.registry import BACKBONE_REGISTRY

    cards = backbone_cards()
    for name in (
        "terramind_v1_tiny",
        "terramind_v1_small",
        "terramind_v1_base",
        "terramind_v1_large",
        "terramind_v01_base",
    ):
        assert cards[name].family == "TerraMind" and cards[name].params_m
    model = BACKBONE_REGISTRY.build("terramind_v1_tiny", depth=1)
    measured = sum(p.numel() for p in build_terramind("terramind_v1_tiny", modalities=list(ALL)).parameters())
    assert round(measured / 1e6, 1) == cards["terramind_v1_tiny"].params_m
    assert model.patch_size == 16 and not model.has_cls_token
    with pytest.raises(ConfigError, match="did you mean 'merge_method'"):
        BACKBONE_REGISTRY.build("terramind_v1_tiny", merge_methods="mean")


def test_onnx_export_matches_onnxruntime(tmp_path: Path) -> None:
    from geoft.export import export_info, export_onnx
    from geoft.export_verify import verify_onnx

    model = _factory("FCNDecoder", modalities=("S1GRD",), depth=1).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_onnx(model, tmp_path / "terramind.onnx", torch.randn(1, 2, 32, 32))
    assert export_info(path, "onnx")["dynamic_hw"]
    assert verify_onnx(model, path, [torch.randn(1, 2, 32, 32), torch.randn(2, 2, 48, 64)]) < 1e-3


def test_offline_pretrained_fails_fast_naming_ckpt_path(monkeypatch, tmp_path: Path) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(OfflineError) as info:
        build_terramind("terramind_v1_base", pretrained=True, depth=1)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "ckpt_path" in message and "TerraMind_v1_base.pt" in message
    assert "ibm-esa-geospatial/TerraMind-1.0-base" in message


def test_pretrained_uses_the_hub_cache(monkeypatch, tmp_path: Path) -> None:
    import huggingface_hub

    state = published_layout(dim=192, depth=1, tokenized=())
    snapshot = tmp_path / "models--ibm-esa-geospatial--TerraMind-1.0-tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    torch.save(state, snapshot / "TerraMind_v1_tiny.pt")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build_terramind("terramind_v1_tiny", pretrained=True, depth=1)
    assert torch.equal(model.encoder[0].attn.qkv.weight, state["encoder.0.attn.qkv.weight"])
    assert "huggingface.co/ibm-esa-geospatial/TerraMind-1.0-tiny" in model.load_report.source
