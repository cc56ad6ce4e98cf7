"""Model factories: argument routing and checking, padding, freezing, auxiliary heads, smp/timm/full models."""

import logging
import warnings

import pytest
import torch
from torch import nn

from geoft.errors import ConfigError, DataError, RegistryError
from geoft.models import AuxiliaryHead, Model, ModelOutput
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.models.factories.full import FullModelFactory
from geoft.models.factories.smp import SMPModelFactory
from geoft.models.factories.timm import TimmModelFactory
from geoft.registry import MODEL_FACTORY_REGISTRY


class TinyViT(nn.Module):
    """Follows the ViT backbone contract: tokens [B, 1 + T'*h*w, D], patch_size (t, h, w)."""

    output_format = "tokens"

    def __init__(self, in_chans=3, embed_dim=16, depth=2, patch=8, num_frames=1):
        super().__init__()
        self.patch_size = (1, patch, patch)
        self.num_frames = num_frames
        self.embed = nn.Conv3d(in_chans, embed_dim, self.patch_size, self.patch_size)
        self.blocks = nn.ModuleList(nn.Linear(embed_dim, embed_dim) for _ in range(depth))
        self.cls = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.out_channels = [embed_dim] * depth
        self.seen_kwargs = {}

    def forward(self, x, temporal_coords=None, location_coords=None):
        self.seen_kwargs = {"temporal_coords": temporal_coords, "location_coords": location_coords}
        if x.ndim == 4:
            x = x.unsqueeze(2)
        assert x.shape[-1] % self.patch_size[-1] == 0 and x.shape[-2] % self.patch_size[-2] == 0
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)
        outs = []
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        return outs


factory = EncoderDecoderFactory()


def _seg(**kwargs):
    args = {"backbone": TinyViT(), "decoder": "FCNDecoder", "num_classes": 3, "decoder_channels": 8}
    args.update(kwargs)
    return factory.build_model("segmentation", **args)


def test_builds_a_model_and_pads_odd_sizes():
    model = _seg()
    assert isinstance(model, Model)
    out = model(torch.randn(2, 3, 37, 50))
    assert isinstance(out, ModelOutput) and out.output.shape == (2, 3, 37, 50)
    no_rescale = _seg(rescale=False)
    # without rescale the decoder's own resolution is kept: 4 FCN upsamplings of a 4x4 grid
    assert no_rescale(torch.randn(1, 3, 32, 32)).output.shape == (1, 3, 64, 64)
    zero = _seg(padding="zero")
    assert zero(torch.randn(1, 3, 30, 30)).output.shape == (1, 3, 30, 30)
    with pytest.raises(ConfigError, match="unknown padding"):
        _seg(padding="mirror")


def test_reflect_padding_that_cannot_work_says_what_to_do():
    with pytest.raises(DataError, match="padding='zero'"):
        _seg()(torch.randn(1, 3, 4, 4))


def test_unknown_arguments_are_named():
    with pytest.raises(ConfigError, match="'decoder_chanels'|'chanels'"):
        factory.build_model("segmentation", TinyViT(), "FCNDecoder", num_classes=2, decoder_chanels=8)
    with pytest.raises(ConfigError, match="'num_class'.*did you mean 'num_classes'"):
        factory.build_model("segmentation", TinyViT(), "FCNDecoder", num_class=3)
    with pytest.raises(ConfigError, match="'dropotu'.*did you mean 'dropout'"):
        _seg(head_dropotu=0.1)
    with pytest.raises(ConfigError, match="backbone 'timm_resnet18'.*'not_an_arg'|not_an_arg"):
        factory.build_model(
            "segmentation", "timm_resnet18", "FCNDecoder", num_classes=2, backbone_not_an_arg=1
        )
    with pytest.raises(ConfigError, match="already built module"):
        factory.build_model("segmentation", TinyViT(), "FCNDecoder", num_classes=2, backbone_pretrained=True)
    with pytest.raises(ConfigError, match="does not support task 'segmentaton'.*'segmentation'"):
        factory.build_model("segmentaton", TinyViT(), "FCNDecoder", num_classes=2)
    with pytest.raises(RegistryError, match="Did you mean: UperNetDecoder"):
        factory.build_model("segmentation", TinyViT(), "UpernetDecoder", num_classes=2)


def test_missing_required_arguments_are_a_config_error_naming_them():
    with pytest.raises(
        ConfigError, match=r"missing required argument.*: decoder\nHint: set them in model_args"
    ) as info:
        factory.build_model("segmentation", backbone="timm_resnet18", num_classes=2)
    assert "backbone" not in str(info.value).splitlines()[0]
    with pytest.raises(ConfigError, match="missing required argument.*: backbone, decoder"):
        factory.build_model("segmentation", num_classes=2)
    # through a task's model_args (the LightningCLI / YAML route), the same error, not a TypeError
    from geoft.tasks import SemanticSegmentationTask

    with pytest.raises(ConfigError, match="missing required argument.*: decoder"):
        SemanticSegmentationTask(
            model_factory="EncoderDecoderFactory",
            model_args={"backbone": "timm_resnet18", "backbone_pretrained": False, "num_classes": 2},
        )


def test_num_classes_rules():
    with pytest.raises(ConfigError, match="needs num_classes"):
        factory.build_model("segmentation", TinyViT(), "FCNDecoder")
    with pytest.raises(ConfigError, match="not used for regression"):
        factory.build_model("regression", TinyViT(), "FCNDecoder", num_classes=3)
    with pytest.raises(ConfigError, match="includes its head"):
        factory.build_model("segmentation", TinyViT(), "LinearDecoder", num_classes=2, head_dropout=0.1)


def test_explicit_kwargs_win_over_prefixed_with_a_warning():
    with pytest.warns(UserWarning, match="overridden by decoder_kwargs"):
        model = factory.build_model(
            "segmentation",
            TinyViT(),
            "FCNDecoder",
            num_classes=2,
            decoder_channels=4,
            decoder_kwargs={"channels": 12},
        )
    assert model.decoder.out_channels == 12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = factory.build_model(
            "segmentation",
            TinyViT(),
            "FCNDecoder",
            num_classes=2,
            decoder_num_convs=2,
            decoder_kwargs={"channels": 12},
        )
    assert len(model.decoder.convs) == 2


def test_vit_without_necks_gets_them_and_logs(caplog):
    with caplog.at_level(logging.INFO, logger="geoft.models.factories.encoder_decoder"):
        model = factory.build_model(
            "segmentation", TinyViT(depth=6), "UperNetDecoder", num_classes=2, decoder_channels=8
        )
    assert "ReshapeTokensToImage" in caplog.text
    names = [type(n).__name__ for n in model.neck.necks]
    assert names == ["SelectIndices", "ReshapeTokensToImage", "LearnedInterpolateToPyramidal"]
    assert model.neck.necks[0].indices == [1, 2, 3, 5]
    assert model(torch.randn(1, 3, 64, 64)).output.shape == (1, 2, 64, 64)
    with pytest.raises(ConfigError, match="ReshapeTokensToImage"):
        factory.build_model("segmentation", TinyViT(), "FCNDecoder", num_classes=2, necks=[])(
            torch.randn(1, 3, 32, 32)
        )


def test_freeze_parts_stops_their_gradients():
    model = _seg(aux_decoders=[AuxiliaryHead("aux", "FCNDecoder", {"channels": 4, "num_convs": 1})])
    model.freeze_encoder()
    model.freeze_decoder()
    out = model(torch.randn(1, 3, 32, 32))
    (out.output.mean() + out.auxiliary_heads["aux"].mean()).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.aux_heads["aux"].decoder.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    model.zero_grad(set_to_none=True)
    model.freeze_head()
    assert not any(p.requires_grad for p in model.parameters())


def test_aux_heads_appear_in_output_with_their_own_args():
    aux = [
        AuxiliaryHead("fcn", "FCNDecoder", {"decoder_channels": 4, "num_convs": 1, "head_dropout": 0.1}),
        {"name": "lin", "decoder": "LinearDecoder", "decoder_args": {"upsampling_size": 8}},
    ]
    model = factory.build_model("regression", TinyViT(), "IdentityDecoder", aux_decoders=aux)
    out = model(torch.randn(2, 3, 40, 24))
    assert out.output.shape == (2, 40, 24)
    assert set(out.auxiliary_heads) == {"fcn", "lin"}
    assert all(v.shape == (2, 40, 24) for v in out.auxiliary_heads.values())
    assert model.aux_heads["fcn"].decoder.out_channels == 4
    with pytest.raises(ConfigError, match="'chanels'"):
        factory.build_model(
            "regression",
            TinyViT(),
            "IdentityDecoder",
            aux_decoders=[AuxiliaryHead("a", "FCNDecoder", {"chanels": 4})],
        )
    with pytest.raises(ConfigError, match="unique"):
        factory.build_model("regression", TinyViT(), "IdentityDecoder", aux_decoders=[aux[1], aux[1]])


def test_coords_reach_the_backbone():
    backbone = TinyViT()
    model = factory.build_model("classification", backbone, "IdentityDecoder", num_classes=4)
    coords = torch.zeros(2, 1, 2)
    out = model(torch.randn(2, 3, 16, 16), temporal_coords=coords, location_coords=torch.zeros(2, 2))
    assert out.output.shape == (2, 4)
    assert backbone.seen_kwargs["temporal_coords"] is coords


def test_model_factory_registry_builds_factories():
    assert isinstance(MODEL_FACTORY_REGISTRY.build("EncoderDecoderFactory"), EncoderDecoderFactory)
    assert set(MODEL_FACTORY_REGISTRY.names()) >= {
        "EncoderDecoderFactory",
        "SMPModelFactory",
        "TimmModelFactory",
        "FullModelFactory",
    }


def test_smp_model_factory():
    smp_factory = SMPModelFactory()
    model = smp_factory.build_model(
        "segmentation",
        "resnet18",
        "Unet",
        in_channels=4,
        num_classes=3,
        encoder_depth=3,
        decoder_channels=[16, 8, 8],
    )
    out = model(torch.randn(1, 4, 50, 70)).output
    assert out.shape == (1, 3, 50, 70)
    reg = smp_factory.build_model(
        "regression", "resnet18", "FPN", in_channels=2, encoder_depth=3, decoder_segmentation_channels=32
    )
    assert reg(torch.randn(2, 2, 64, 64)).output.shape == (2, 64, 64)
    reg.freeze_encoder()
    assert not any(p.requires_grad for p in reg.model.encoder.parameters())
    with pytest.raises(ConfigError, match="'decoder_chanels'"):
        smp_factory.build_model("segmentation", num_classes=2, decoder_chanels=[8])
    with pytest.raises(ConfigError, match="did you mean Unet"):
        smp_factory.build_model("segmentation", model="Unte", num_classes=2)
    with pytest.raises(ConfigError, match="does not support task 'classification'"):
        smp_factory.build_model("classification", num_classes=2)


def test_timm_model_factory():
    model = TimmModelFactory().build_model("classification", "resnet18", num_classes=5, in_channels=6)
    assert model(torch.randn(2, 6, 32, 32)).output.shape == (2, 5)
    model.freeze_encoder()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("model.fc") for n in trainable)
    with pytest.raises(RegistryError, match="resnet18"):
        TimmModelFactory().build_model("classification", "resnet18x", num_classes=2)
    with pytest.raises(ConfigError, match="rejected the arguments"):
        TimmModelFactory().build_model("classification", "resnet18", num_classes=2, no_such_arg=1)


def test_full_model_factory_wraps_modules():
    class Net(nn.Module):
        patch_size = 8

        def __init__(self):
            super().__init__()
            self.encoder = nn.Conv2d(3, 4, 8, 8)
            self.decoder = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            assert x.shape[-1] % 8 == 0
            return self.decoder(self.encoder(x))

    model = FullModelFactory().build_model("segmentation", Net())
    assert model(torch.randn(1, 3, 30, 41)).output.shape == (1, 2, 30, 41)
    model.freeze_encoder()
    assert not any(p.requires_grad for p in model.model.encoder.parameters())
    built = FullModelFactory().build_model(
        "regression", "torch.nn:Conv2d", model_kwargs={"in_channels": 3, "out_channels": 1, "kernel_size": 1}
    )
    assert built(torch.randn(1, 3, 9, 9)).output.shape == (1, 9, 9)
    with pytest.raises(ConfigError, match="'kernel'"):
        FullModelFactory().build_model(
            "regression", "torch.nn:Conv2d", model_kwargs={"in_channels": 3, "out_channels": 1, "kernel": 1}
        )
    with pytest.raises(ConfigError, match="import path"):
        FullModelFactory().build_model("regression", "prithvi_eo_tiny")
