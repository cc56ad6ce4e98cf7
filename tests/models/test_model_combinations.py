"""Backbone x neck x decoder x task combinations build and train (forward + backward) on tiny chips."""

import functools

import pytest
import torch
from torch import nn

from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.registry import BACKBONE_REGISTRY

factory = EncoderDecoderFactory()


class TinyViT(nn.Module):
    """A ViT following the backbone contract (tokens [B, 1 + T'*h*w, D], patch_size (t, h, w))."""

    output_format = "tokens"

    def __init__(self, in_chans=3, embed_dim=16, depth=4, patch=8, num_frames=1):
        super().__init__()
        self.patch_size = (1, patch, patch)
        self.num_frames = num_frames
        self.embed = nn.Conv3d(in_chans, embed_dim, self.patch_size, self.patch_size)
        self.blocks = nn.ModuleList(nn.Linear(embed_dim, embed_dim) for _ in range(depth))
        self.cls = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.out_channels = [embed_dim] * depth

    def forward(self, x, temporal_coords=None, location_coords=None):
        if x.ndim == 4:
            x = x.unsqueeze(2)
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)
        outs = []
        for block in self.blocks:
            h = torch.relu(block(h))
            outs.append(h)
        return outs


def _has(name):
    return name in BACKBONE_REGISTRY


# name -> (builder, input channels)
BACKBONES = {
    "fake_vit": (lambda: TinyViT(), 3),
    "prithvi_eo_tiny": (lambda: BACKBONE_REGISTRY.build("prithvi_eo_tiny", depth=4, img_size=32), 6),
    "timm_resnet18": (lambda: BACKBONE_REGISTRY.build("timm_resnet18"), 3),
}


@functools.cache
def _backbone(name):
    if name != "fake_vit" and not _has(name):
        pytest.skip(f"backbone {name} is not registered")
    return BACKBONES[name][0]()


DECODERS = {
    "FCNDecoder": {"channels": 8, "num_convs": 2},
    "UperNetDecoder": {"channels": 8, "pool_scales": [1, 2]},
    "UNetDecoder": {},
    "IdentityDecoder": {},
    "LinearDecoder": {},
    "MLPDecoder": {"channels": 8},
    "ASPPDecoder": {"channels": 8, "dilations": [1, 2]},
    "smp_Unet": {},
    "smp_FPN": {"pyramid_channels": 16, "segmentation_channels": 32},
    "smp_UPerNet": {"channels": 16},
}


def _decoder_kwargs(decoder, backbone):
    """Small decoders; UNet widths depend on the number of features (4 for ViTs via the auto necks, 5 for resnet)."""
    n = 5 if backbone == "timm_resnet18" else 4
    if decoder == "UNetDecoder":
        return {"channels": [16] * n}
    if decoder == "smp_Unet":
        return {"decoder_channels": [16] * (n - 1)}
    return DECODERS[decoder]


def _check_trains(model, x, expected_shape):
    features, _, _ = model._features(x, None, None)
    assert [f.shape[1] for f in features] == model.neck.out_channels  # process_channel_list is right
    out = model(x).output
    assert out.shape == expected_shape
    assert torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("decoder", list(DECODERS))
def test_segmentation(backbone, decoder):
    channels = BACKBONES[backbone][1]
    kwargs = _decoder_kwargs(decoder, backbone)
    model = factory.build_model(
        "segmentation", _backbone(backbone), decoder, num_classes=3, decoder_kwargs=kwargs
    )
    _check_trains(model, torch.randn(2, channels, 32, 32), (2, 3, 32, 32))


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("decoder", ["UperNetDecoder", "smp_Unet"])
def test_regression(backbone, decoder):
    channels = BACKBONES[backbone][1]
    model = factory.build_model(
        "regression",
        _backbone(backbone),
        decoder,
        decoder_kwargs=DECODERS[decoder],
        head_final_act="softplus",
    )
    _check_trains(model, torch.randn(2, channels, 64, 48), (2, 64, 48))


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize(
    ("decoder", "necks", "task"),
    [
        ("IdentityDecoder", None, "classification"),
        ("IdentityDecoder", [{"name": "AggregateTokens", "pooling": "max"}], "multilabel_classification"),
        ("LinearDecoder", None, "classification"),
    ],
)
def test_classification(backbone, decoder, necks, task):
    channels = BACKBONES[backbone][1]
    model = factory.build_model(
        task, _backbone(backbone), decoder, num_classes=4, necks=necks, decoder_kwargs=DECODERS[decoder]
    )
    _check_trains(model, torch.randn(2, channels, 32, 32), (2, 4))


@pytest.mark.parametrize("decoder", ["FCNDecoder", "UperNetDecoder", "smp_Unet"])
def test_odd_and_non_square_sizes_with_patch_16(decoder):
    vit = TinyViT(embed_dim=32, depth=4, patch=16)
    kwargs = _decoder_kwargs(decoder, "fake_vit")
    model = factory.build_model("segmentation", vit, decoder, num_classes=2, decoder_kwargs=kwargs)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 250, 250)).output.shape == (1, 2, 250, 250)
        assert model(torch.randn(1, 3, 96, 161)).output.shape == (1, 2, 96, 161)


def test_explicit_reference_style_necks():
    necks = [
        {"name": "SelectIndices", "indices": [0, 1, 2, 3]},
        {"name": "ReshapeTokensToImage"},
        {"name": "LearnedInterpolateToPyramidal"},
    ]
    model = factory.build_model(
        "segmentation", TinyViT(), "UNetDecoder", num_classes=2, necks=necks, decoder_channels=[16, 16, 8, 8]
    )
    _check_trains(model, torch.randn(1, 3, 64, 32), (1, 2, 64, 32))


@pytest.mark.parametrize("backbone", ["fake_vit", "prithvi_eo_tiny"])
@pytest.mark.parametrize("auto_necks", [True, False])
def test_multi_temporal_folds_time_into_channels(backbone, auto_necks):
    frames = 3
    if backbone == "fake_vit":
        vit, channels = TinyViT(num_frames=frames), 3
    else:
        if not _has("prithvi_eo_tiny"):
            pytest.skip("backbone prithvi_eo_tiny is not registered")
        vit, channels = BACKBONE_REGISTRY.build("prithvi_eo_tiny", depth=2, num_frames=frames), 6
    necks = None if auto_necks else [{"name": "ReshapeTokensToImage", "effective_time_dim": frames}]
    model = factory.build_model(
        "segmentation", vit, "UperNetDecoder", num_classes=2, necks=necks, decoder_channels=8
    )
    width = vit.out_channels[-1]
    assert model.neck.out_channels[-1] == width * frames
    _check_trains(model, torch.randn(2, channels, frames, 32, 48), (2, 2, 32, 48))


def test_backbones_by_registry_name():
    if not _has("prithvi_eo_tiny"):
        pytest.skip("backbone prithvi_eo_tiny is not registered")
    model = factory.build_model(
        "segmentation",
        "prithvi_eo_tiny",
        "UperNetDecoder",
        num_classes=2,
        backbone_depth=2,
        backbone_num_frames=1,
        decoder_channels=8,
    )
    _check_trains(model, torch.randn(1, 6, 48, 48), (1, 2, 48, 48))
    cnn = factory.build_model(
        "segmentation", "timm_resnet18", "smp_DeepLabV3Plus", num_classes=2, decoder_channels=16
    )
    _check_trains(cnn, torch.randn(2, 3, 64, 64), (2, 2, 64, 64))


def test_cnn_inputs_are_padded_to_the_deepest_stride():
    if not _has("timm_resnet18"):
        pytest.skip("backbone timm_resnet18 is not registered")
    model = factory.build_model(
        "segmentation",
        _backbone("timm_resnet18"),
        "smp_FPN",
        num_classes=2,
        **{"decoder_pyramid_channels": 16, "decoder_segmentation_channels": 32},
    )
    assert model.patch_size == (32, 32)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 50, 70)).output.shape == (1, 2, 50, 70)


def test_upernet_scale_modules_like_reference_configs():
    necks = [{"name": "SelectIndices", "indices": [0, 1, 2, 3]}, {"name": "ReshapeTokensToImage"}]
    model = factory.build_model(
        "segmentation",
        TinyViT(),
        "UperNetDecoder",
        num_classes=2,
        necks=necks,
        decoder_channels=8,
        decoder_scale_modules=True,
        head_channel_list=[8],
        head_dropout=0.1,
    )
    _check_trains(model, torch.randn(2, 3, 32, 32), (2, 2, 32, 32))
    auto = factory.build_model(
        "segmentation",
        TinyViT(),
        "UperNetDecoder",
        num_classes=2,
        decoder_channels=8,
        decoder_scale_modules=True,
    )
    assert [type(n).__name__ for n in auto.neck.necks] == ["ReshapeTokensToImage"]
    assert auto.decoder(auto._features(torch.randn(2, 3, 32, 32), None, None)[0]).shape[-1] == 16
