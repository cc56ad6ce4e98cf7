"""Real data: a small CNN trained with SemanticSegmentationTask maps water on a Sen1Floods11 chip.

The 512x512 Sentinel-2 chip (Murcia, Spain; 13 bands, labels -1/0/1) is cut into 64x64 GeoTIFF tiles
with rasterio. Tiles of three quadrants train the model, the held-out bottom-right quadrant (about
20 % water) evaluates it. Data go through geoft's GenericNonGeoSegmentationDataModule (bands B3, B8,
B11, B12, normalised with statistics of the training tiles). Always predicting "not water" gives a
water IoU of 0; the trained model must beat it by a wide margin.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning
import numpy as np
import pytest
import rasterio
import torch

from benchmarks.precision_real import USED_BANDS, sen1floods11_datamodule, small_water_cnn
from benchmarks.scenes import cut_into_quadrant_tiles
from geoft.tasks import SemanticSegmentationTask

TILE = 64


def _write_tiles(source: Path, out: Path) -> None:
    """Cut image and label into TILE x TILE GeoTIFFs: ``train/`` (3 quadrants) and ``test/`` (bottom right)."""
    cut_into_quadrant_tiles(
        source / "Spain_7370579_S2Hand.tif", source / "Spain_7370579_LabelHand.tif", out, TILE
    )


@pytest.mark.slow
@pytest.mark.real_data
def test_water_iou_on_held_out_quadrant(real_data: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    start = time.perf_counter()
    tiles = tmp_path / "tiles"
    _write_tiles(real_data / "sen1floods11_sample", tiles)
    datamodule = sen1floods11_datamodule(tiles, tmp_path / "stats")
    task = SemanticSegmentationTask(
        model=small_water_cnn(len(USED_BANDS)),
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
        num_sanity_val_steps=0,
        limit_val_batches=0,  # evaluation happens in trainer.test on the held-out quadrant
    )
    trainer.fit(task, datamodule)
    result = trainer.test(task, datamodule, verbose=False)[0]
    water_iou = result["test/IoU_water"]
    elapsed = time.perf_counter() - start
    print(
        f"sen1floods11 held-out quadrant: water IoU {water_iou:.3f}, mIoU {result['test/mIoU']:.3f}, {elapsed:.1f}s"
    )
    # the all-"not water" baseline has water IoU 0
    assert water_iou > 0.5
    cm = np.array(task.confusion_matrices["test"]["matrix"])
    assert cm.shape == (2, 2) and cm.sum() == 16 * TILE * TILE - 11  # 11 pixels of the quadrant are -1

    predictions = trainer.predict(task, datamodule)
    first = predictions[0]
    assert first["prediction"].shape[1:] == (TILE, TILE)
    with rasterio.open(first["filename"][0]) as src:
        assert tuple(first["transform"][0])[:6] == tuple(src.transform)[:6]
        assert first["crs"][0] is not None and "4326" in str(src.crs)
