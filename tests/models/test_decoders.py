"""Decoders: every registered decoder and smp_ decoders build, run, declare out_channels, and fail clearly."""

import pytest
import torch

from geoft.errors import ConfigError, RegistryError
from geoft.registry import DECODER_REGISTRY

PYRAMID = [8, 16, 24, 32]  # channels at strides 4, 8, 16, 32 of a 64x64 image


def _pyramid(batch=2, size=64, channels=PYRAMID):
    return [torch.randn(batch, c, size // 2 ** (i + 2), size // 2 ** (i + 2)) for i, c in enumerate(channels)]


SMALL = {
    "FCNDecoder": {"channels": 8, "num_convs": 2},
    "UperNetDecoder": {"channels": 8, "pool_scales": [1, 2]},
    "UNetDecoder": {"channels": [32, 16, 8, 8]},
    "IdentityDecoder": {},
    "LinearDecoder": {"num_classes": 3, "upsampling_size": 4},
    "MLPDecoder": {"channels": 8},
    "ASPPDecoder": {"channels": 8, "dilations": [1, 2]},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_geoft_decoders_forward_backward(name):
    decoder = DECODER_REGISTRY.build(name, PYRAMID, **SMALL[name])
    feats = [f.requires_grad_() for f in _pyramid()]
    out = decoder(feats)
    assert out.ndim == 4 and out.shape[:2] == (2, decoder.out_channels)
    out.square().mean().backward()
    assert any(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


def test_decoder_resolutions():
    feats = _pyramid()
    assert DECODER_REGISTRY.build("UperNetDecoder", PYRAMID, channels=8)(feats).shape[-1] == 16
    assert DECODER_REGISTRY.build("FCNDecoder", PYRAMID, channels=8, num_convs=3)(feats).shape[-1] == 16
    assert (
        DECODER_REGISTRY.build("LinearDecoder", PYRAMID, num_classes=2, upsampling_size=32)(feats).shape[-1]
        == 64
    )
    assert DECODER_REGISTRY.build("UNetDecoder", PYRAMID)(feats).shape[-1] == 16
    assert DECODER_REGISTRY.build("IdentityDecoder", PYRAMID, out_index=0)(feats).shape == (2, 8, 16, 16)


def test_decoders_reject_tokens_with_a_hint():
    tokens = [torch.randn(2, 17, c) for c in PYRAMID]
    for name in ("FCNDecoder", "UperNetDecoder", "MLPDecoder", "ASPPDecoder"):
        decoder = DECODER_REGISTRY.build(name, PYRAMID, channels=8)
        with pytest.raises(ConfigError, match="ReshapeTokensToImage"):
            decoder(tokens)


def test_decoder_argument_errors():
    with pytest.raises(ConfigError, match="in_index=7"):
        DECODER_REGISTRY.build("FCNDecoder", PYRAMID, in_index=7)
    with pytest.raises(ConfigError, match="channels has 2 entries"):
        DECODER_REGISTRY.build("UNetDecoder", PYRAMID, channels=[8, 8])
    with pytest.raises(ConfigError, match="not a torch.nn class"):
        DECODER_REGISTRY.build("MLPDecoder", PYRAMID, activation="Relu6x")
    with pytest.raises(ConfigError, match="embed_dim"):
        DECODER_REGISTRY.build("UperNetDecoder", [])


def test_unknown_decoder_lists_close_matches():
    with pytest.raises(RegistryError, match="Did you mean: UperNetDecoder"):
        DECODER_REGISTRY.get("UperNetDecodr")
    with pytest.raises(RegistryError, match="Unknown decoder 'smp_Unett'"):
        DECODER_REGISTRY.get("smp_Unett")


CNN5 = [8, 8, 16, 24, 32]  # strides 2..32 like a timm features_only CNN


@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [
        ("Unet", {}),
        ("Unet", {"decoder_channels": [32, 16, 16, 8]}),
        ("FPN", {"pyramid_channels": 16, "segmentation_channels": 32}),
        ("DeepLabV3Plus", {"channels": 16}),
        ("UPerNet", {"channels": 16}),
        ("Linknet", {}),
        ("PSPNet", {"psp_out_channels": 16}),
        ("Segformer", {"segmentation_channels": 16}),
        ("MAnet", {"decoder_channels": [16, 16, 8, 8]}),
    ],
)
def test_smp_decoders_on_cnn_features(arch, kwargs):
    decoder = DECODER_REGISTRY.build(f"smp_{arch}", CNN5, **kwargs)
    feats = [
        torch.randn(2, c, 64 // 2 ** (i + 1), 64 // 2 ** (i + 1), requires_grad=True)
        for i, c in enumerate(CNN5)
    ]
    out = decoder(feats)
    assert out.shape[:2] == (2, decoder.out_channels)
    out.mean().backward()


def test_smp_decoder_argument_errors_and_listing():
    names = DECODER_REGISTRY.names(prefixes=["smp"])
    assert {"smp_Unet", "smp_FPN", "smp_DeepLabV3Plus", "smp_UPerNet"} <= set(names)
    with pytest.raises(ConfigError, match="'decoder_chanels'.*did you mean 'decoder_channels'"):
        DECODER_REGISTRY.build("smp_Unet", CNN5, decoder_chanels=[8, 8, 8, 8])
    with pytest.raises(ConfigError, match="given|same argument"):
        DECODER_REGISTRY.build("smp_UPerNet", CNN5, channels=8, decoder_channels=8)
    with pytest.raises(ConfigError, match="cannot be built"):
        DECODER_REGISTRY.build("smp_Unet", CNN5, decoder_channels=[8, 8])
    with pytest.raises(ConfigError, match="at least 2 features"):
        DECODER_REGISTRY.build("smp_FPN", [8])


def test_smp_decoder_pickles_with_its_model(tmp_path):
    decoder = DECODER_REGISTRY.build("smp_Unet", CNN5)
    torch.save(decoder, tmp_path / "d.pt")
    loaded = torch.load(tmp_path / "d.pt", weights_only=False)
    feats = [torch.randn(1, c, 32 // 2 ** (i + 1), 32 // 2 ** (i + 1)) for i, c in enumerate(CNN5)]
    loaded.eval(), decoder.eval()
    assert torch.allclose(loaded(feats), decoder(feats))
