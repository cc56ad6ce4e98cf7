"""TemporalWrapper: dates folded into the batch, pooled; a change-detection task a single date cannot solve."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from geoft.errors import ConfigError, DataError
from geoft.models.backbones.temporal import TemporalWrapper
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory


class CountingCNN(nn.Module):
    """A small single-date encoder that counts its calls (the wrapper must call it once per batch)."""

    def __init__(self, in_chans: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_chans, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 1), nn.ReLU()
        )
        self.out_channels = [16]
        self.calls = 0

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.calls += 1
        return [self.net(x)]


def change_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two dates whose values are each uniform; the label is 1 where 4x4 blocks changed (by +0.5 mod 1)."""
    g = torch.Generator().manual_seed(seed)
    first = torch.rand(n, 2, 1, 4, 4, generator=g)
    changed = torch.rand(n, 1, 1, 4, 4, generator=g) < 0.5
    second = torch.where(changed, (first + 0.5) % 1.0, first)
    x = (
        torch.cat([first, second], dim=2).repeat_interleave(4, -1).repeat_interleave(4, -2)
    )  # [n, 2, 2, 16, 16]
    x = x + 0.01 * torch.randn(x.shape, generator=g)
    label = changed[:, 0, 0].long().repeat_interleave(4, -1).repeat_interleave(4, -2)
    return x, label


@functools.cache
def single_date_accuracy() -> float:
    return accuracy(CountingCNN(), single_date=True)


def accuracy(backbone: nn.Module, single_date: bool) -> float:
    torch.manual_seed(0)
    model = EncoderDecoderFactory().build_model(
        task="segmentation",
        backbone=backbone,
        decoder="IdentityDecoder",
        head_channel_list=[16],
        num_classes=2,
        necks=[],
    )
    x, y = change_data(16, seed=1)
    test_x, test_y = change_data(8, seed=2)
    if single_date:
        x, test_x = x[:, :, -1], test_x[:, :, -1]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x).output, y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return float((model(test_x).output.argmax(1) == test_y).float().mean())


@pytest.mark.parametrize("pooling", ["diff", "concat"])
def test_temporal_pooling_beats_a_single_date_on_change(pooling: str) -> None:
    encoder = CountingCNN()
    temporal = accuracy(TemporalWrapper(encoder, pooling=pooling, n_timestamps=2), single_date=False)
    baseline = single_date_accuracy()
    print(f"{pooling}: pixel accuracy {temporal:.3f}; single date {baseline:.3f}")
    assert encoder.calls >= 80  # one encoder call per step, not one per date
    assert temporal > 0.9 and baseline < 0.7 and temporal - baseline > 0.25


def test_runs_the_backbone_once_on_all_dates() -> None:
    encoder = CountingCNN()
    wrapper = TemporalWrapper(encoder, pooling="keep")
    out = wrapper(torch.randn(3, 2, 4, 8, 8))
    assert encoder.calls == 1 and out[0].shape == (3, 4, 16, 8, 8)
    mean = TemporalWrapper(encoder, pooling="mean", subset_lengths=[2, 2])(torch.randn(3, 2, 4, 8, 8))
    assert mean[0].shape == (3, 16, 8, 8)


def test_use_temporal_from_model_args_with_prithvi_tiny() -> None:
    model = EncoderDecoderFactory().build_model(
        task="segmentation",
        backbone="prithvi_eo_tiny",
        backbone_in_chans=2,
        backbone_img_size=32,
        backbone_depth=2,
        backbone_use_temporal=True,
        backbone_temporal_pooling="concat",
        backbone_temporal_n_timestamps=3,
        decoder="FCNDecoder",
        num_classes=2,
    )
    assert isinstance(model.encoder, TemporalWrapper)
    assert model.encoder.out_channels[0] == 3 * model.encoder.encoder.out_channels[0]
    assert model(torch.randn(2, 2, 3, 32, 32)).output.shape == (2, 2, 32, 32)


def test_bad_temporal_arguments_and_inputs() -> None:
    with pytest.raises(ConfigError, match="use_temporal"):
        EncoderDecoderFactory().build_model(
            task="segmentation",
            backbone="prithvi_eo_tiny",
            backbone_temporal_pooling="max",
            decoder="FCNDecoder",
            num_classes=2,
        )
    with pytest.raises(ConfigError, match="two dates"):
        TemporalWrapper(CountingCNN(), pooling="diff", n_timestamps=3)
    with pytest.raises(DataError, match="4 dates"):
        TemporalWrapper(CountingCNN(), pooling="concat", n_timestamps=3)(torch.randn(1, 2, 4, 8, 8))
