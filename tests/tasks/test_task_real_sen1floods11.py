"""Real data: a small CNN trained with SemanticSegmentationTask maps water on a Sen1Floods11 chip.

The 512x512 Sentinel-2 chip (Murcia, Spain) is cut into 64x64 tiles. Training uses the tiles of three
quadrants, evaluation the held-out bottom-right quadrant (about 20 % water). Always predicting
"not water" gives a water IoU of 0; the trained model must beat it by a wide margin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import pytest
import rasterio
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from geoft.tasks import SemanticSegmentationTask

BANDS = {"B3": 2, "B8": 7, "B11": 11, "B12": 12}  # green, NIR, SWIR1, SWIR2: water is dark in NIR/SWIR
TILE = 64


def _tiles(array: np.ndarray) -> np.ndarray:
    """``[..., H, W]`` -> ``[N, ..., TILE, TILE]`` (row-major tiles)."""
    *lead, h, w = array.shape
    t = array.reshape(*lead, h // TILE, TILE, w // TILE, TILE)
    t = np.moveaxis(t, (-4, -2), (0, 1))
    return t.reshape(-1, *lead, TILE, TILE)


def _load(root: Path) -> tuple[TensorDataset, TensorDataset]:
    folder = root / "sen1floods11_sample"
    with rasterio.open(folder / "Spain_7370579_S2Hand.tif") as src:
        image = src.read(list(i + 1 for i in BANDS.values())).astype(np.float32)
    with rasterio.open(folder / "Spain_7370579_LabelHand.tif") as src:
        label = src.read(1).astype(np.int64)
    mean = image.mean(axis=(1, 2), keepdims=True)
    std = image.std(axis=(1, 2), keepdims=True)
    image = (image - mean) / std
    half = image.shape[-1] // 2
    train_x, train_y = [], []
    for qy in (0, 1):
        for qx in (0, 1):
            window = (slice(qy * half, (qy + 1) * half), slice(qx * half, (qx + 1) * half))
            x, y = _tiles(image[(slice(None), *window)]), _tiles(label[window])
            if (qy, qx) == (1, 1):
                test = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
            else:
                train_x.append(x)
                train_y.append(y)
    train = TensorDataset(
        torch.from_numpy(np.concatenate(train_x)), torch.from_numpy(np.concatenate(train_y))
    )
    return train, test


def _collate(items: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    return {"image": torch.stack([i for i, _ in items]), "mask": torch.stack([m for _, m in items])}


class SmallCNN(nn.Module):
    def __init__(self, in_ch: int, num_classes: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, 24, 3, padding=1),
            nn.BatchNorm2d(24),
            nn.ReLU(),
            nn.Conv2d(24, 24, 3, padding=2, dilation=2),
            nn.BatchNorm2d(24),
            nn.ReLU(),
            nn.Conv2d(24, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.slow
@pytest.mark.real_data
def test_water_iou_on_held_out_quadrant(real_data: Path) -> None:
    torch.manual_seed(0)
    start = time.perf_counter()
    train, test = _load(real_data)
    assert len(train) == 48 and len(test) == 16
    task = SemanticSegmentationTask(
        model=SmallCNN(len(BANDS)),
        loss=["ce", "dice"],
        ignore_index=-1,
        class_names=["not_water", "water"],
        lr=5e-3,
        optimizer="AdamW",
        scheduler="WarmupCosine",
        scheduler_hparams={"warmup_iters": 6, "interval": "step"},
    )
    trainer = lightning.Trainer(
        max_epochs=8,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, DataLoader(train, batch_size=8, shuffle=True, collate_fn=_collate))
    result = trainer.test(task, DataLoader(test, batch_size=16, collate_fn=_collate), verbose=False)[0]
    water_iou = result["test/IoU_water"]
    elapsed = time.perf_counter() - start
    print(
        f"sen1floods11 held-out quadrant: water IoU {water_iou:.3f}, mIoU {result['test/mIoU']:.3f}, {elapsed:.1f}s"
    )
    # the all-"not water" baseline has water IoU 0
    assert water_iou > 0.5
    cm = np.array(task.confusion_matrices["test"]["matrix"])
    assert cm.sum() == int((test.tensors[1] != -1).sum())
