"""torchgeo ResNets under the reference's names: published bands, strict loading, band selection,
offline errors, training through EncoderDecoderFactory and ONNX export."""

from __future__ import annotations

import pytest
import timm
import torch
import torchgeo.models

from geoft.errors import ConfigError, OfflineError
from geoft.models.backbones import downloads
from geoft.models.backbones.bands import band_label
from geoft.models.backbones.cards.torchgeo import CARDS, RESNETS, SWINS, VITS
from geoft.models.backbones.torchgeo_weights import published_bands
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.registry import BACKBONE_REGISTRY

NAME = "ssl4eol_resnet18_landsat_oli_tirs_toa_moco"  # Landsat 8/9: B5 is NIR, B4 red


def _member(weights: str):
    cls, member = weights.split(".")
    return getattr(torchgeo.models, cls)[member]


def test_card_bands_are_the_enums_bands_read_per_sensor():
    for table in (RESNETS, VITS, SWINS):
        for name, (arch, weights) in table.items():
            member = _member(weights)
            assert CARDS[name].published_bands == tuple(band_label(b) for b in published_bands(member)), name
            assert len(CARDS[name].published_bands) == member.meta.get("in_chans", 3), name
            assert callable(getattr(torchgeo.models, arch))


def test_reference_names_are_registered():
    # a sample of TerraTorch's names, including its irregular ones
    for name in (
        "ssl4eos12_resnet50_sentinel2_all_moco",
        "ssl4eol_resnet18_landsat_oli_tirs_toa_moco",
        "satlas_resnet152_sentinel2_mi_ms",
        "satlas_resnet50_sentinel2_si_rgb_satlas",
        "fmow_resnet50_fmow_rgb_gassl",
        "seco_resnet18_sentinel2_rgb_seco",
        "ssl4eos12_vit_small_patch16_224_sentinel2_all_dino",
        "satlas_swin_b_landsat_mi_rgb",
    ):
        assert name in BACKBONE_REGISTRY, name


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A file in the enum's layout: a whole timm ResNet-18 (with fc) for the 11 OLI-TIRS bands."""
    torch.manual_seed(0)
    state = timm.create_model("resnet18", in_chans=11).state_dict()
    path = tmp_path_factory.mktemp("resnet") / "resnet18_landsat_oli_tirs_toa_moco.pth"
    torch.save(state, path)
    return path, state


def test_loads_published_layout_strictly(published):
    path, state = published
    model = BACKBONE_REGISTRY.build(NAME, ckpt_path=path)
    assert model.in_chans == 11 and model.bands[:3] == ["B1", "B2", "B3"]
    assert torch.equal(model.model.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.model.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert set(model.load_report.dropped) == {"fc.weight", "fc.bias"}
    assert model.out_channels == [64, 64, 128, 256, 512] and model.output_format == "NCHW"


def test_bands_select_first_conv_channels_by_name(published):
    path, state = published
    # NIR is Landsat-8 B5 (index 4), RED is B4 (index 3); sensor codes are accepted too
    model = BACKBONE_REGISTRY.build(NAME, ckpt_path=path, bands=["NIR", "RED", "NDVI", "B10"])
    w, src = model.model.conv1.weight, state["conv1.weight"]
    assert (
        torch.equal(w[:, 0], src[:, 4])
        and torch.equal(w[:, 1], src[:, 3])
        and torch.equal(w[:, 3], src[:, 9])
    )
    assert not torch.equal(w[:, 2], src[:, 2])
    assert "NDVI initialised new" in model.load_report.adapted["conv1.weight"]
    with pytest.raises(ConfigError, match="not both"):
        BACKBONE_REGISTRY.build(NAME, bands=["RED"], model_bands=["RED"])


def test_truncated_file_is_an_error(tmp_path, published):
    _, state = published
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4")}, tmp_path / "bad.pth")
    with pytest.raises(Exception, match="lacks"):
        BACKBONE_REGISTRY.build(NAME, ckpt_path=tmp_path / "bad.pth")


def test_offline_pretrained_fails_at_once_naming_ckpt_path(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(downloads, "host_reachable", lambda host, port=443, timeout=3.0: False)
    with pytest.raises(OfflineError, match="ckpt_path") as info:
        BACKBONE_REGISTRY.build("satlas_resnet152_sentinel2_mi_ms", pretrained=True)
    assert "sentinel2_resnet152_mi_ms" in str(info.value)


@pytest.mark.parametrize(
    ("decoder", "kwargs"),
    [
        ("UperNetDecoder", {"channels": 8, "pool_scales": [1, 2]}),
        ("FCNDecoder", {"channels": 8, "num_convs": 1}),
        ("UNetDecoder", {"channels": [16] * 5}),
    ],
)
def test_trains_through_encoder_decoder_factory(published, decoder, kwargs):
    path, _ = published
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone=NAME,
        decoder=decoder,
        num_classes=3,
        backbone_ckpt_path=str(path),
        backbone_bands=["RED", "GREEN", "BLUE", "NIR"],
        decoder_kwargs=kwargs,
    )
    out = model(torch.randn(2, 4, 64, 64)).output
    assert out.shape == (2, 3, 64, 64)
    out.square().mean().backward()
    assert model.encoder.model.conv1.weight.grad.abs().sum() > 0


def test_onnx_export_matches_onnxruntime(tmp_path):
    from geoft.export import export_onnx
    from geoft.export_verify import verify_onnx

    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        "segmentation",
        backbone="ssl4eos12_resnet18_sentinel2_rgb_moco",
        decoder="UperNetDecoder",
        num_classes=2,
        decoder_kwargs={"channels": 8, "pool_scales": [1, 2]},
    )
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    path = export_onnx(model, tmp_path / "resnet.onnx", x)
    assert verify_onnx(model, path, [x, torch.randn(2, 3, 64, 96)]) < 1e-3
