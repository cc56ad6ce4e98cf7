"""Necks: output shapes, declared channels, token-to-image reshaping, and error messages."""

import pytest
import torch

from geoft.errors import ConfigError, RegistryError
from geoft.models.necks import (
    AddBottleneckLayer,
    AggregateTokens,
    InterpolateToPyramidal,
    LearnedInterpolateToPyramidal,
    MaxpoolToPyramidal,
    NeckChain,
    PermuteDims,
    ReshapeTokensToImage,
    SelectIndices,
    build_neck_list,
)
from geoft.registry import NECK_REGISTRY


def _images(channels, size=8, batch=2):
    return [torch.randn(batch, c, size, size) for c in channels]


def _tokens(channels, grid=(4, 4), frames=1, batch=2, cls=True):
    n = frames * grid[0] * grid[1] + (1 if cls else 0)
    return [torch.randn(batch, n, c) for c in channels]


CASES = [
    (lambda ch: SelectIndices(ch, indices=[0, 2]), [8, 16, 24, 32], "images"),
    (lambda ch: InterpolateToPyramidal(ch), [8, 8, 8, 8], "images"),
    (lambda ch: MaxpoolToPyramidal(ch), [8, 8, 8, 8], "images"),
    (lambda ch: LearnedInterpolateToPyramidal(ch), [16, 16, 16, 16], "images"),
    (lambda ch: AddBottleneckLayer(ch), [8, 16], "images"),
    (lambda ch: ReshapeTokensToImage(ch), [12, 12], "tokens"),
    (lambda ch: ReshapeTokensToImage(ch, effective_time_dim=3), [12, 12], "tokens3"),
    (lambda ch: AggregateTokens(ch, pooling="max"), [12, 20], "tokens"),
    (lambda ch: AggregateTokens(ch), [8, 16], "images"),
]


@pytest.mark.parametrize(("make", "channels", "kind"), CASES)
def test_process_channel_list_matches_output(make, channels, kind):
    neck = make(channels)
    if kind == "images":
        feats = _images(channels)
    else:
        feats = _tokens(channels, frames=3 if kind == "tokens3" else 1)
    out = neck(feats, image_size=(64, 64))
    assert [f.shape[1] for f in out] == neck.process_channel_list(channels)
    assert all(torch.isfinite(f).all() for f in out)


def test_pyramid_necks_scale_features():
    feats = _images([8, 8, 8, 8], size=8)
    up = InterpolateToPyramidal([8] * 4)(feats)
    assert [f.shape[-1] for f in up] == [128, 64, 32, 16]
    down = MaxpoolToPyramidal([8] * 4)(feats)
    assert [f.shape[-1] for f in down] == [8, 4, 2, 1]
    learned = LearnedInterpolateToPyramidal([16] * 4)(_images([16] * 4, size=8))
    assert [f.shape[-1] for f in learned] == [32, 16, 8, 4]


def test_reshape_tokens_square_grid_keeps_layout():
    tokens = torch.arange(1 + 6, dtype=torch.float32).reshape(1, 7, 1)
    # without the CLS token, 6 tokens of a 2x3 grid, row-major
    out = ReshapeTokensToImage([1])([tokens], image_size=(32, 48))[0]
    assert out.shape == (1, 1, 2, 3)
    assert out[0, 0].tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(("image_size", "grid"), [((64, 64), (4, 4)), ((32, 96), (2, 6)), ((80, 48), (5, 3))])
def test_reshape_tokens_non_square_from_image_size(image_size, grid):
    feats = _tokens([8], grid=grid)
    out = ReshapeTokensToImage([8])(feats, image_size=image_size)[0]
    assert out.shape == (2, 8, *grid)


def test_reshape_tokens_explicit_h_and_no_cls():
    feats = _tokens([8], grid=(2, 8), cls=False)
    out = ReshapeTokensToImage([8], remove_cls_token=False, h=2)(feats)[0]
    assert out.shape == (2, 8, 2, 8)


def test_reshape_tokens_folds_time_into_channels_in_order():
    d, frames = 2, 3
    # token value = frame index, so channel block t must hold frame t
    per_frame = [torch.full((1, 4, d), float(t)) for t in range(frames)]
    tokens = torch.cat([torch.zeros(1, 1, d), *per_frame], dim=1)
    out = ReshapeTokensToImage([d], effective_time_dim=frames)([tokens], image_size=(32, 32))[0]
    assert out.shape == (1, d * frames, 2, 2)
    for t in range(frames):
        assert torch.all(out[0, t * d : (t + 1) * d] == t)


def test_reshape_tokens_errors_are_actionable():
    with pytest.raises(ConfigError, match="not a square grid"):
        ReshapeTokensToImage([8])(_tokens([8], grid=(2, 3)))
    with pytest.raises(ConfigError, match="declared"):
        ReshapeTokensToImage([16])(_tokens([8]), image_size=(64, 64))
    with pytest.raises(ConfigError, match="effective_time_dim"):
        ReshapeTokensToImage([8], effective_time_dim=3)(_tokens([8], grid=(2, 2)), image_size=(32, 32))
    with pytest.raises(ConfigError, match="ReshapeTokensToImage expects tokens"):
        ReshapeTokensToImage([8])(_images([8]))


def test_aggregate_tokens_poolings():
    x = torch.randn(2, 5, 4)
    assert torch.allclose(AggregateTokens([4])([x])[0], x[:, 1:].mean(1))
    assert torch.allclose(AggregateTokens([4], pooling="max", drop_cls=False)([x])[0], x.amax(1))
    assert torch.equal(AggregateTokens([4], pooling="cls")([x])[0], x[:, 0])
    with pytest.raises(ConfigError, match="unknown pooling"):
        AggregateTokens([4], pooling="median")


def test_permute_dims_and_errors():
    out = PermuteDims([8], new_order=[0, 2, 1])(_tokens([8]))
    assert out[0].shape == (2, 8, 17)
    with pytest.raises(ConfigError, match="not a permutation"):
        PermuteDims([8], new_order=[0, 0, 1])
    with pytest.raises(ConfigError, match="out of range"):
        SelectIndices([8, 8], indices=[2])
    with pytest.raises(ConfigError, match="exactly 4"):
        LearnedInterpolateToPyramidal([8, 8])


def test_build_neck_list_chains_channels_and_names_bad_args():
    specs = [
        {"name": "SelectIndices", "indices": [1, 3, 5, 7]},
        {"name": "ReshapeTokensToImage", "effective_time_dim": 2},
        {"name": "LearnedInterpolateToPyramidal"},
    ]
    necks, channels = build_neck_list(specs, [16] * 8)
    assert channels == [8, 16, 32, 32]
    tokens = [torch.randn(1, 1 + 2 * 16, 16) for _ in range(8)]
    out = NeckChain(necks)(tokens, image_size=(64, 64))
    assert [f.shape[1] for f in out] == channels
    assert [f.shape[-1] for f in out] == [16, 8, 4, 2]
    with pytest.raises(ConfigError, match="'indice'.*did you mean 'indices'"):
        build_neck_list([{"name": "SelectIndices", "indice": [0]}], [8])
    with pytest.raises(RegistryError, match="Did you mean: SelectIndices"):
        build_neck_list([{"name": "SelectIndice", "indices": [0]}], [8])
    with pytest.raises(ConfigError, match="'name' key"):
        build_neck_list([{"indices": [0]}], [8])


def test_registry_lists_all_necks():
    assert {
        "SelectIndices",
        "ReshapeTokensToImage",
        "InterpolateToPyramidal",
        "MaxpoolToPyramidal",
        "LearnedInterpolateToPyramidal",
        "PermuteDims",
        "AddBottleneckLayer",
        "AggregateTokens",
    } <= set(NECK_REGISTRY.names())
