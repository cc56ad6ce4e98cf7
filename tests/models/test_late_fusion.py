"""Late fusion of per-modality encoders, built by EncoderDecoderFactory from model_args."""

from __future__ import annotations

import pytest
import torch

from geoft.errors import ConfigError
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory

TINY = {"backbone": "prithvi_eo_tiny", "img_size": 32, "depth": 2}


def build(merge_method: str, s1: dict | None = None):
    return EncoderDecoderFactory().build_model(
        task="segmentation",
        backbone="late_fusion",
        backbone_encoders={"S2": {**TINY, "in_chans": 3}, "S1": s1 or {**TINY, "in_chans": 2}},
        backbone_merge_method=merge_method,
        decoder="FCNDecoder",
        num_classes=2,
    )


@pytest.mark.parametrize("merge_method", ["mean", "concat"])
def test_dict_input_through_factory_model(merge_method: str) -> None:
    model = build(merge_method)
    x = {"S2": torch.randn(2, 3, 30, 30), "S1": torch.randn(2, 2, 30, 30)}  # padded to 32 and cropped back
    out = model(x).output
    assert out.shape == (2, 2, 30, 30)
    out.sum().backward()
    for modality in ("S2", "S1"):
        grads = [p.grad for p in model.encoder.encoders[modality].parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), modality
    if merge_method == "concat":
        assert model.encoder.out_channels[0] == 2 * model.encoder.encoders["S2"].out_channels[0]


def test_mean_with_a_sampled_out_modality_and_concat_refuses_it() -> None:
    x = {"S2": torch.randn(1, 3, 32, 32)}
    assert build("mean")(x).output.shape == (1, 2, 32, 32)
    with pytest.raises(ConfigError, match="S1"):
        build("concat")(x)


def test_mismatched_encoders_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="one output format"):
        build("mean", s1={"backbone": "timm_resnet18", "in_chans": 2})
    from geoft.models.backbones.late_fusion import LateFusionBackbone

    with pytest.raises(ConfigError, match="same widths"):
        LateFusionBackbone(
            {
                "S2": {"backbone": "timm_resnet18", "in_chans": 3},
                "S1": {"backbone": "timm_resnet50", "in_chans": 2},
            }
        )
