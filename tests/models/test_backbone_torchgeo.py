"""torchgeo ResNets with named weights: channels from metadata, local and cached weight files."""

from __future__ import annotations

import os

import pytest
import timm
import torch
from torchgeo.models import ResNet18_Weights

from geoft.errors import ConfigError, OfflineError
from geoft.models.backbones import downloads
from geoft.registry import BACKBONE_REGISTRY

WEIGHTS = "ResNet18_Weights.SENTINEL2_ALL_MOCO"


def _torchgeo_layout(in_chans: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return timm.create_model("resnet18", in_chans=in_chans).state_dict()


def test_in_chans_from_weights_metadata_and_forward():
    model = BACKBONE_REGISTRY.build(
        "torchgeo_resnet18", weights=WEIGHTS, pretrained=False, out_indices=[2, 4]
    )
    assert model.in_chans == 13 and model.bands[:2] == ["B1", "B2"]
    assert model.output_format == "NCHW" and model.out_channels == [128, 512]
    feats = model(torch.randn(1, 13, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 128, 8, 8), (1, 512, 2, 2)]


def test_resnet50_channels():
    model = BACKBONE_REGISTRY.build("torchgeo_resnet50", weights="SENTINEL2_ALL_MOCO", pretrained=False)
    assert model.out_channels == [64, 256, 512, 1024, 2048]


def test_ckpt_path_loads_local_copy(tmp_path):
    state = _torchgeo_layout(13)
    torch.save(state, tmp_path / "moco.pth")
    model = BACKBONE_REGISTRY.build("torchgeo_resnet18", weights=WEIGHTS, ckpt_path=tmp_path / "moco.pth")
    assert torch.equal(model.model.conv1.weight, state["conv1.weight"])
    assert set(model.load_report.dropped) == {"fc.weight", "fc.bias"}


def test_weights_from_torch_hub_cache(monkeypatch, tmp_path):
    """Weights already in torch hub's cache load without network access."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    url = ResNet18_Weights.SENTINEL2_ALL_MOCO.url
    (tmp_path / "checkpoints").mkdir()
    state = _torchgeo_layout(13)
    torch.save(state, tmp_path / "checkpoints" / os.path.basename(url))
    model = BACKBONE_REGISTRY.build("torchgeo_resnet18", weights=ResNet18_Weights.SENTINEL2_ALL_MOCO)
    assert torch.equal(model.model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert "SENTINEL2_ALL_MOCO" in model.load_report.source


def test_offline_download_names_ckpt_path(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(downloads, "host_reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(OfflineError, match="ckpt_path") as info:
        BACKBONE_REGISTRY.build("torchgeo_resnet18", weights=WEIGHTS)
    assert "resnet18_sentinel2_all_moco" in str(info.value)


def test_bad_weights_names():
    with pytest.raises(ConfigError, match="are for 'resnet50'"):
        BACKBONE_REGISTRY.build("torchgeo_resnet18", weights="ResNet50_Weights.SENTINEL2_ALL_MOCO")
    with pytest.raises(ConfigError, match="has no member 'SENTINEL9'"):
        BACKBONE_REGISTRY.build("torchgeo_resnet18", weights="SENTINEL9")
    with pytest.raises(ConfigError, match="unknown argument"):
        BACKBONE_REGISTRY.build("torchgeo_resnet18", wieghts=WEIGHTS)


def test_other_in_chans_adapts_first_conv(tmp_path):
    torch.save(_torchgeo_layout(13), tmp_path / "moco.pth")
    model = BACKBONE_REGISTRY.build(
        "torchgeo_resnet18", weights=WEIGHTS, ckpt_path=tmp_path / "moco.pth", in_chans=4
    )
    assert model.model.conv1.weight.shape[1] == 4
    assert "13 -> 4" in model.load_report.adapted["conv1.weight"]
