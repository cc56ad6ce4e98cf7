"""Real data: Sentinel-2 + Sentinel-1 of one Sen1Floods11 chip, fine-tuned on three quadrants.

The chip's S2, S1 and label are cut into 64-px tiles as in ``test_task_real_sen1floods11.py`` (three
quadrants train, the bottom-right one, about 20 % water, tests), read by ``GenericMultiModalDataModule``.
Three Prithvi-EO tiny models train briefly: S2 alone, S2+S1 with ``concat_bands`` and S2+S1 with late
fusion (one encoder per modality). Their water IoUs are printed; each must be clearly above the 0 of
always predicting "not water" (no ordering between them is asserted: a few epochs cannot settle it,
``benchmarks/multimodal_real.py`` compares them over seeds). The two fused models then predict the
whole 512² chip from its two files (S2 and S1) as a scene, and map water on the held-out quadrant too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from benchmarks.multimodal_real import CHIP, MODELS, S1_BANDS, cut_s2_s1_tiles, trained
from benchmarks.precision_real import S2_BANDS, USED_BANDS
from geoft.io.scene import predict_scene_with_task
from geoft.io.scene_inputs import SceneInput

EPOCHS = 3


def water_iou(prediction: np.ndarray, label: np.ndarray) -> float:
    valid = label >= 0
    pred, water = (prediction == 1) & valid, (label == 1) & valid
    return float((pred & water).sum() / max((pred | water).sum(), 1))


def predict_chip(task: torch.nn.Module, datamodule, source: Path, out: Path, as_dict: bool) -> np.ndarray:
    bands = {"S2": [S2_BANDS.index(b) + 1 for b in USED_BANDS], "S1": [1, 2]}
    inputs = {
        m: SceneInput(
            [source / f"{CHIP}_{m}Hand.tif"], bands[m], normalise=(datamodule.means[m], datamodule.stds[m])
        )
        for m in ("S2", "S1")
    }
    params = {"crop": 64, "stride": 48, "batch_size": 16}
    result = predict_scene_with_task(task, inputs, out, as_dict=as_dict, params=params, precision="32-true")
    with rasterio.open(result.prediction) as pred, rasterio.open(source / f"{CHIP}_LabelHand.tif") as label:
        assert pred.transform.almost_equals(label.transform, 1e-12) and pred.shape == label.shape
        return pred.read(1)


@pytest.mark.slow
@pytest.mark.real_data
def test_s2_s1_fusion_maps_water_on_the_held_out_quadrant(real_data: Path, tmp_path: Path) -> None:
    source = real_data / "sen1floods11_sample"
    tiles = cut_s2_s1_tiles(source, tmp_path / "tiles")
    assert len(list((tiles / "test").glob("*_S1Hand.tif"))) == 16 and len(S1_BANDS) == 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 64-px tiles: a second thread adds more waiting than work on a busy CPU
    try:
        runs = {name: trained(tiles, name, seed=0, epochs=EPOCHS) for name in MODELS}
        with rasterio.open(source / f"{CHIP}_LabelHand.tif") as src:
            label = src.read(1)[256:, 256:]
        scene_iou = {
            name: water_iou(
                predict_chip(
                    task, dm, source, tmp_path / f"{name}.tif", MODELS[name]["concat_bands"] is False
                )[256:, 256:],
                label,
            )
            for name, (task, dm, _) in runs.items()
            if name != "s2"
        }
    finally:
        torch.set_num_threads(threads)
    print(
        "sen1floods11 held-out quadrant, water IoU: "
        + ", ".join(
            f"{name} {r['water_iou']:.3f} (fit {r['fit_s']:.1f}s)" for name, (_, _, r) in runs.items()
        )
        + "; predicted as a scene from the S2 and S1 files: "
        + ", ".join(f"{name} {iou:.3f}" for name, iou in scene_iou.items())
    )
    for name, (_, _, result) in runs.items():
        assert result["water_iou"] > 0.25, (name, result)  # always "not water": 0
    for name, iou in scene_iou.items():
        assert iou > 0.25, (name, iou)
