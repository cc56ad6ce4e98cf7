"""Collate samples into batches: tensors are stacked, metadata (file name, CRS, transform) kept as lists."""

from __future__ import annotations

from typing import Any

import torch

from geoft.errors import DataError

METADATA_KEYS = ("filename", "crs", "transform")


def collate_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensor entries; every other entry becomes a list (``None`` allowed)."""
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                names = [f"{s.get('filename')} {tuple(s[key].shape)}" for s in samples]
                raise DataError(
                    f"Cannot batch samples of different sizes ({key}): " + "; ".join(names[:6]),
                    hint="set chip_size (centre crop/pad) or pad_to_multiple, or use batch_size 1.",
                )
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch
