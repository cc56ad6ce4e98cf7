"""``TemporalWrapper``: any single-date backbone over a time series ``[B, C, T, H, W]``.

The dates are folded into the batch (``[B*T, C, H, W]``), so the backbone runs ONCE on all of them,
then each feature is unfolded to ``[B, T, ...]`` and pooled over time: ``mean``, ``max``, ``diff``
(first minus second date, or subset), ``concat`` (along the feature dimension) or ``keep``
(``[B, T, ...]``). ``subset_lengths`` first averages consecutive groups of dates, e.g. ``[3, 3]``
for before/after means. Enabled from ``model_args`` with ``backbone_use_temporal: true`` and
``backbone_temporal_pooling``, ``backbone_temporal_n_timestamps``, ``backbone_temporal_subset_lengths``
(the reference's names).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from geoft.errors import ConfigError, DataError

Pooling = Literal["mean", "max", "diff", "keep", "concat"]
POOLINGS = ("mean", "max", "diff", "keep", "concat")


class TemporalWrapper(nn.Module):
    """Run ``encoder`` on every date at once and pool its features over time.

    Args:
        encoder: a geoft backbone (``out_channels`` list) that reads ``[B, C, H, W]``.
        pooling: mean, max, diff, keep or concat.
        n_timestamps: dates per sample; needed by ``concat`` (its widths are ``T`` times the encoder's),
            and checked against every input when given.
        subset_lengths: average groups of consecutive dates first (their sum is the number of dates;
            ``diff`` needs exactly two groups).
    """

    def __init__(
        self,
        encoder: nn.Module,
        pooling: Pooling = "mean",
        n_timestamps: int | None = None,
        subset_lengths: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"temporal pooling must be one of {POOLINGS}, not {pooling!r}.")
        self.subset_lengths = None if subset_lengths is None else [int(n) for n in subset_lengths]
        groups = n_timestamps if self.subset_lengths is None else len(self.subset_lengths)
        if (
            self.subset_lengths is not None
            and n_timestamps is not None
            and sum(self.subset_lengths) != n_timestamps
        ):
            raise ConfigError(
                f"subset_lengths {self.subset_lengths} do not add up to n_timestamps {n_timestamps}."
            )
        if pooling == "diff" and groups is not None and groups != 2:
            raise ConfigError(
                f"diff pooling needs two dates (or two subsets), got {groups}.",
                hint="set subset_lengths, e.g. [3, 3] for the mean before minus the mean after.",
            )
        if pooling == "concat" and groups is None:
            raise ConfigError(
                "concat pooling needs n_timestamps (its feature widths are T times the encoder's)."
            )
        self.encoder = encoder
        self.pooling = pooling
        self.n_timestamps = n_timestamps
        widths = list(encoder.out_channels)
        self.out_channels = [w * groups for w in widths] if pooling == "concat" else widths  # type: ignore[operator]
        self.output_format = getattr(encoder, "output_format", "NCHW")
        for name in ("patch_size", "reductions"):
            if hasattr(encoder, name):
                setattr(self, name, getattr(encoder, name))

    def forward(
        self, x: Tensor, temporal_coords: Tensor | None = None, location_coords: Tensor | None = None
    ) -> list[Tensor]:
        if x.ndim != 5:
            raise DataError(
                f"TemporalWrapper takes [B, C, T, H, W], got shape {tuple(x.shape)}.",
                hint="set expand_temporal_dimension: true in the datamodule (or one file per date).",
            )
        b, c, t, h, w = x.shape
        if self.n_timestamps is not None and t != self.n_timestamps:
            raise DataError(
                f"the input has {t} dates but the model was built for n_timestamps {self.n_timestamps}."
            )
        if self.subset_lengths is not None and sum(self.subset_lengths) != t:
            raise DataError(
                f"subset_lengths {self.subset_lengths} do not add up to the {t} dates of the input."
            )
        folded = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        coords = {}
        if temporal_coords is not None:  # one date per folded sample
            coords["temporal_coords"] = temporal_coords.reshape(b * t, 1, -1)
        if location_coords is not None:
            coords["location_coords"] = location_coords.repeat_interleave(t, dim=0)
        features = self.encoder(folded, **coords)
        if isinstance(features, Tensor):
            features = [features]
        return [self.pool(f.reshape(b, t, *f.shape[1:])) for f in features]

    def pool(self, stacked: Tensor) -> Tensor:
        """``[B, T, ...]`` -> pooled over T (feature dimension: 1 for NCHW maps, last for tokens)."""
        if self.subset_lengths is not None:
            stacked = torch.stack(
                [s.mean(1) for s in torch.split(stacked, self.subset_lengths, dim=1)], dim=1
            )
        if self.pooling == "mean":
            return stacked.mean(1)
        if self.pooling == "max":
            return stacked.amax(1)
        if self.pooling == "diff":
            if stacked.shape[1] != 2:
                raise DataError(f"diff pooling needs two dates (or subsets), got {stacked.shape[1]}.")
            return stacked[:, 0] - stacked[:, 1]
        if self.pooling == "concat":
            dim = -1 if self.output_format == "tokens" else 1
            return torch.cat(stacked.unbind(1), dim=dim)
        return stacked  # keep
