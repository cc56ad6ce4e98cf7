"""Prithvi Swin B / L: both checkpoint layouts load strictly, band re-cut, no download, pyramid models."""

from __future__ import annotations

import pytest
import torch

from geoft.errors import CheckpointError, ConfigError
from geoft.models.backbones.bands import PRITHVI_BANDS, Band
from geoft.models.backbones.prithvi_swin import build_prithvi_swin
from geoft.models.backbones.prithvi_swin_weights import swin_to_unfold_order
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory, backbone_patch_size

DEPTHS = [1, 2, 1, 1]


def small_swin(**kwargs):
    torch.manual_seed(0)
    return build_prithvi_swin("prithvi_swin_B", depths=DEPTHS, drop_path_rate=0.0, **kwargs)


def original_swin_layout(model) -> dict[str, torch.Tensor]:
    """The original Swin / SimMIM pre-training layout (``encoder.layers.<i>``, merging at the end of a
    stage, one final norm, plus the buffers, mask token and decoder such files carry)."""
    state: dict[str, torch.Tensor] = {}
    last = len(model.stages) - 1
    for key, value in model.state_dict().items():
        stage = int(key.split(".")[1]) if key.startswith("stages.") else None
        if key.startswith("patch_embed."):
            state["encoder." + key.replace(".projection.", ".proj.")] = value
        elif ".downsample." in key:
            rest = key.split(".downsample.", 1)[1]
            state[f"encoder.layers.{stage - 1}.downsample.{rest}"] = value
        elif key.startswith(f"stages.{last}.norm."):
            state["encoder.norm." + key.rsplit(".", 1)[1]] = value
        elif ".blocks." in key:
            state["encoder.layers." + key[len("stages.") :]] = value
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage.blocks):
            state[f"encoder.layers.{i}.blocks.{j}.attn.relative_position_index"] = (
                block.attn.relative_position_index
            )
            if j % 2:
                state[f"encoder.layers.{i}.blocks.{j}.attn_mask"] = torch.zeros(64, 49, 49)
    state["encoder.mask_token"] = torch.zeros(1, 1, 128)
    state["decoder.0.weight"] = torch.zeros(32 * 32 * 6, 1024, 1, 1)
    return state


def reference_layout(model) -> dict[str, torch.Tensor]:
    """The reference's (MMSegmentation) layout: merging in unfold order at the end of a stage."""
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if ".downsample." in key:
            stage, rest = int(key.split(".")[1]), key.split(".downsample.", 1)[1]
            state[f"stages.{stage - 1}.downsample.{rest}"] = swin_to_unfold_order(value)
            continue
        key = key.replace(".attn.", ".attn.w_msa.").replace("mlp.fc1.", "ffn.layers.0.0.")
        state[key.replace("mlp.fc2.", "ffn.layers.1.").replace(".projection.", ".projection.")] = value
    state["head.fc.weight"], state["head.fc.bias"] = torch.zeros(1000, 1024), torch.zeros(1000)
    return {f"model.encoder.{k}": v for k, v in state.items()}


def test_original_swin_layout_loads_strictly(tmp_path):
    source = small_swin()
    with torch.no_grad():
        for param in source.parameters():
            param.add_(0.05 * torch.randn_like(param))
    state = original_swin_layout(source)
    for key in ("encoder.patch_embed.proj.weight", "encoder.layers.0.blocks.0.attn.qkv.weight",
                "encoder.layers.1.blocks.1.attn_mask", "encoder.layers.0.downsample.reduction.weight",
                "encoder.layers.3.blocks.0.mlp.fc2.bias", "encoder.norm.weight"):  # fmt: skip
        assert key in state
    torch.save({"model": state}, tmp_path / "swin_simmim.pth")
    model = build_prithvi_swin(
        "prithvi_swin_B", depths=DEPTHS, drop_path_rate=0.0, ckpt_path=tmp_path / "swin_simmim.pth"
    )
    report = model.load_report
    assert torch.equal(
        model.stages[1].downsample.reduction.weight, source.stages[1].downsample.reduction.weight
    )
    assert torch.equal(model.stages[3].norm.weight, state["encoder.norm.weight"])
    assert "identity LayerNorm" in report.adapted["stages.0.norm"]
    assert torch.equal(model.stages[0].norm.weight, torch.ones(128))
    assert "mask token" in report.dropped["encoder.mask_token"]
    assert "recomputed" in report.dropped["encoder.layers.1.blocks.1.attn_mask"]
    assert "decoder.0.weight" in report.dropped
    x = torch.randn(1, 6, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x)[3], source.eval()(x)[3])


def test_reference_layout_loads_to_the_same_weights(tmp_path):
    source = small_swin()
    torch.save({"state_dict": reference_layout(source)}, tmp_path / "terratorch.ckpt")
    model = build_prithvi_swin("prithvi_swin_B", depths=DEPTHS, ckpt_path=tmp_path / "terratorch.ckpt")
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert "classifier" in model.load_report.dropped["model.encoder.head.fc.weight"]


def test_load_is_strict(tmp_path):
    state = original_swin_layout(small_swin())
    torch.save({k: v for k, v in state.items() if "layers.2.blocks.0.mlp" not in k}, tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="lacks 4 tensors"):
        build_prithvi_swin("prithvi_swin_B", depths=DEPTHS, ckpt_path=tmp_path / "a.pth")
    torch.save({**state, "encoder.extra.weight": torch.ones(1)}, tmp_path / "b.pth")
    with pytest.raises(CheckpointError, match="no Prithvi Swin encoder part"):
        build_prithvi_swin("prithvi_swin_B", depths=DEPTHS, ckpt_path=tmp_path / "b.pth")
    torch.save(state, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        build_prithvi_swin("prithvi_swin_L", depths=DEPTHS, ckpt_path=tmp_path / "c.pth")


def test_band_selection_recuts_the_patch_embedding(tmp_path):
    state = original_swin_layout(small_swin())
    torch.save(state, tmp_path / "swin.pth")
    model = build_prithvi_swin(
        "prithvi_swin_B",
        depths=DEPTHS,
        bands=["RED", "green", "BLUE", "NDVI"],
        ckpt_path=tmp_path / "swin.pth",
    )
    weight, original = model.patch_embed.projection.weight, state["encoder.patch_embed.proj.weight"]
    assert model.bands == [Band.RED, Band.GREEN, Band.BLUE, "NDVI"]
    assert torch.equal(weight[:, 0], original[:, 2]) and torch.equal(weight[:, 2], original[:, 0])
    assert "NDVI keep a fresh initialisation" in model.load_report.adapted["patch_embed.projection.weight"]
    with pytest.raises(ConfigError, match="bands=\\["):
        build_prithvi_swin("prithvi_swin_B", depths=DEPTHS, in_chans=4, ckpt_path=tmp_path / "swin.pth")
    assert small_swin().bands == list(PRITHVI_BANDS)


def test_pretrained_without_ckpt_path_fails_at_once_naming_it():
    with pytest.raises(ConfigError, match="no published weights") as info:
        build_prithvi_swin("prithvi_swin_L", pretrained=True)
    assert "ckpt_path" in str(info.value)


def test_window_size_other_than_the_checkpoint_resizes_bias_tables(tmp_path):
    torch.save(original_swin_layout(small_swin()), tmp_path / "swin.pth")
    model = build_prithvi_swin(
        "prithvi_swin_B", depths=DEPTHS, window_size=8, ckpt_path=tmp_path / "swin.pth"
    )
    assert model.stages[0].blocks[0].attn.relative_position_bias_table.shape == (15 * 15, 4)
    assert any("13x13 -> 15x15" in v for v in model.load_report.adapted.values())


@pytest.mark.parametrize(
    ("decoder", "args"),
    [
        ("UperNetDecoder", {"decoder_channels": 16}),
        ("FCNDecoder", {}),
        ("UNetDecoder", {"decoder_channels": [32, 16, 8, 4]}),
    ],
)
def test_pyramid_trains_through_encoder_decoder_factory(decoder, args):
    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation", backbone="prithvi_swin_B", decoder=decoder, num_classes=3, backbone_depths=[1, 1, 1, 1],
        backbone_bands=["BLUE", "GREEN", "RED", "NIR_NARROW"], **args,
    )  # fmt: skip
    assert backbone_patch_size(model.encoder) == 32 and model.encoder.out_channels == [128, 256, 512, 1024]
    out = model(torch.randn(2, 4, 50, 70)).output
    assert out.shape == (2, 3, 50, 70)
    out.mean().backward()
    assert model.encoder.patch_embed.projection.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_exports_to_onnx_matching_onnxruntime(tmp_path):
    from geoft.export import export_info, export_onnx
    from geoft.export_verify import verify_onnx

    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation", backbone="prithvi_swin_B", decoder="FCNDecoder", num_classes=3,
        backbone_depths=[1, 2, 1, 1], backbone_bands=["RED", "GREEN", "BLUE"],
    ).eval()  # fmt: skip
    example = torch.randn(1, 3, 64, 64)
    with pytest.warns(UserWarning, match="fixed size"):  # window padding has no dynamic-size export
        path = export_onnx(model, tmp_path / "swin.onnx", example)
    assert export_info(path, "onnx")["dynamic_hw"] is False
    assert verify_onnx(model, path, [example, torch.randn(2, 3, 64, 64)]) < 1e-3


def test_coordinates_are_refused_by_name() -> None:
    model = small_swin()
    with pytest.raises(
        ConfigError, match="(?s)Prithvi Swin has no time or location encoding.*use_metadata: false"
    ):
        model(torch.randn(1, model.in_chans, 64, 64), temporal_coords=torch.zeros(1, 1, 2))
