"""Heads: output shapes, hidden layers, dropout, final activations and their errors."""

import pytest
import torch

from geoft.errors import ConfigError
from geoft.models.heads import ClassificationHead, RegressionHead, SegmentationHead, build_activation


def test_segmentation_head_shapes_and_hidden_layers():
    x = torch.randn(2, 8, 5, 7)
    assert SegmentationHead(8, 4)(x).shape == (2, 4, 5, 7)
    head = SegmentationHead(8, 3, channel_list=[16, 4], dropout=0.2)
    assert head(x).shape == (2, 3, 5, 7)
    convs = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 4, 3]
    assert any(isinstance(m, torch.nn.Dropout2d) for m in head.modules())


def test_regression_head_upscale_and_final_act():
    x = torch.randn(2, 8, 4, 4)
    head = RegressionHead(8, learned_upscale_layers=2, channel_list=[8], final_act="softplus")
    out = head(x)
    assert out.shape == (2, 1, 16, 16)
    assert (out > 0).all()
    assert RegressionHead(8, num_outputs=3, batch_norm=False)(x).shape == (2, 3, 4, 4)
    assert (RegressionHead(8, final_act="torch.nn.Sigmoid")(x) <= 1).all()


def test_classification_head_vector_and_map_inputs():
    head = ClassificationHead(8, 5, dim_list=[16], dropout=0.1)
    assert head(torch.randn(3, 8)).shape == (3, 5)
    assert head(torch.randn(3, 8, 4, 4)).shape == (3, 5)
    # without hidden layers, classifying each pixel then averaging equals classifying the average
    plain = ClassificationHead(8, 5).eval()
    pooled = ClassificationHead(8, 5, linear_after_pool=True).eval()
    pooled.load_state_dict(plain.state_dict())
    fmap = torch.randn(2, 8, 3, 3)
    assert torch.allclose(plain(fmap), pooled(fmap), atol=1e-5)
    assert ClassificationHead(8, 2, channel_list=[4])(torch.randn(1, 8)).shape == (1, 2)
    with pytest.raises(ConfigError, match="not both"):
        ClassificationHead(8, 2, dim_list=[4], channel_list=[4])
    with pytest.raises(ConfigError, match="ReshapeTokensToImage"):
        ClassificationHead(8, 2)(torch.randn(2, 17, 8))


def test_activation_names_and_errors():
    assert isinstance(build_activation("ReLU"), torch.nn.ReLU)
    assert isinstance(build_activation("GELU"), torch.nn.GELU)
    assert isinstance(build_activation("Hardtanh"), torch.nn.Hardtanh)
    assert isinstance(build_activation(None), torch.nn.Identity)
    with pytest.raises(ConfigError, match="did you mean sigmoid"):
        build_activation("sigmod")
    with pytest.raises(ConfigError, match="cannot be imported"):
        build_activation("torch.nn.NoSuchThing")
    with pytest.raises(ConfigError, match="dropout"):
        SegmentationHead(8, 2, dropout=1.5)
    with pytest.raises(ConfigError, match="num_classes"):
        SegmentationHead(8, 0)
