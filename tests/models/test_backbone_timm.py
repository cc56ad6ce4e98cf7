"""timm models as feature backbones through the registry's ``timm_`` source."""

from __future__ import annotations

import pytest
import timm
import torch

from geoft.errors import CheckpointError, ConfigError, OfflineError
from geoft.models.backbones.timm import TimmBackbone, TimmBackboneSource
from geoft.registry import BACKBONE_REGISTRY


def test_registry_builds_features_only_resnet():
    model = BACKBONE_REGISTRY.build("timm_resnet18", in_chans=6, out_indices=[1, 2, 3, 4])
    assert isinstance(model, TimmBackbone) and model.output_format == "NCHW"
    assert model.out_channels == [64, 128, 256, 512]
    feats = model(torch.randn(2, 6, 64, 64))
    assert [tuple(f.shape) for f in feats] == [
        (2, 64, 16, 16),
        (2, 128, 8, 8),
        (2, 256, 4, 4),
        (2, 512, 2, 2),
    ]
    assert model.reductions == [4, 8, 16, 32]


def test_single_frame_5d_input_and_rejections():
    model = BACKBONE_REGISTRY.build("timm_resnet18", in_chans=2, out_indices=[4]).eval()
    assert model(torch.randn(1, 2, 1, 32, 32))[0].shape == (1, 512, 1, 1)
    assert model(torch.randn(1, 2, 32, 32), temporal_coords=None)[0].shape == (1, 512, 1, 1)
    with pytest.raises(ConfigError, match="single images but got 3 time steps"):
        model(torch.randn(1, 2, 3, 32, 32))
    with pytest.raises(ConfigError, match="does not use location_coords"):
        model(torch.randn(1, 2, 32, 32), location_coords=torch.zeros(1, 2))


def test_source_protocol():
    source = TimmBackboneSource()
    assert "resnet18" in source and "no_such_net" not in source
    assert "resnet18" in source.names()
    assert "timm_convnext_atto" in BACKBONE_REGISTRY


def test_extra_keywords_go_to_timm_and_bad_ones_are_named():
    model = BACKBONE_REGISTRY.build("timm_resnet18", drop_path_rate=0.1, out_indices=[4])
    assert model.out_channels == [512]
    with pytest.raises(ConfigError, match="'colour'"):
        BACKBONE_REGISTRY.build("timm_resnet18", colour="red")
    with pytest.raises(ConfigError, match="timm has no model"):
        TimmBackbone("resnet_nope")


def test_ckpt_path_loads_full_model_weights(tmp_path):
    torch.manual_seed(0)
    full = timm.create_model("resnet18", in_chans=6)
    torch.save(full.state_dict(), tmp_path / "r18.pth")
    model = BACKBONE_REGISTRY.build("timm_resnet18", in_chans=6, ckpt_path=str(tmp_path / "r18.pth"))
    assert torch.equal(model.model.conv1.weight, full.conv1.weight)
    assert torch.equal(model.model.layer4[1].bn2.running_var, full.layer4[1].bn2.running_var)
    assert set(model.load_report.dropped) == {"fc.weight", "fc.bias"}


def test_ckpt_with_other_in_chans_adapts_first_conv(tmp_path):
    full = timm.create_model("resnet18", in_chans=3)
    torch.save({"state_dict": {f"model.{k}": v for k, v in full.state_dict().items()}}, tmp_path / "r18.ckpt")
    model = TimmBackbone("resnet18", in_chans=5, ckpt_path=tmp_path / "r18.ckpt", out_indices=[1, 2])
    assert model.model.conv1.weight.shape[1] == 5
    assert "input channels 3 -> 5" in model.load_report.adapted["conv1.weight"]
    assert "layer4.0.conv1.weight" in model.load_report.dropped  # stage not used by out_indices [1, 2]


def test_ckpt_for_renamed_feature_modules(tmp_path):
    """timm's feature wrapper renames stages.0 -> stages_0; full-model weights still load."""
    full = timm.create_model("convnext_atto")
    torch.save(full.state_dict(), tmp_path / "cn.pth")
    model = TimmBackbone("convnext_atto", ckpt_path=tmp_path / "cn.pth")
    assert torch.equal(model.model.stages_1.blocks[0].conv_dw.weight, full.stages[1].blocks[0].conv_dw.weight)
    assert model.out_channels == [40, 80, 160, 320]


def test_ckpt_of_another_architecture_fails(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="lacks .* layer1.2"):
        TimmBackbone("resnet34", ckpt_path=tmp_path / "r18.pth")


def test_pretrained_offline_names_ckpt_path(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="ckpt_path") as info:
        BACKBONE_REGISTRY.build("timm_resnet18", pretrained=True)
    assert "timm/resnet18" in str(info.value)


def test_channels_last_models_are_returned_as_nchw():
    model = BACKBONE_REGISTRY.build(
        "timm_swin_tiny_patch4_window7_224",
        in_chans=4,
        img_size=64,
        embed_dim=24,
        depths=(1, 1, 1, 1),
        num_heads=(1, 1, 1, 1),
        out_indices=[1, 3],
    ).eval()
    assert model.channels_last_output and model.out_channels == [48, 192]
    feats = model(torch.randn(1, 4, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 48, 8, 8), (1, 192, 2, 2)]
