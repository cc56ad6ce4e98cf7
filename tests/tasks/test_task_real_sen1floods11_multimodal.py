"""Real data: Sentinel-2 + Sentinel-1 of one Sen1Floods11 chip, fine-tuned on three quadrants.

The chip's S2, S1 and label are cut into 64-px tiles as in ``test_task_real_sen1floods11.py`` (three
quadrants train, the bottom-right one, about 20 % water, tests), read by ``GenericMultiModalDataModule``.
Three Prithvi-EO tiny models train briefly: S2 alone, S2+S1 with ``concat_bands`` and S2+S1 with late
fusion (one encoder per modality). Their water IoUs are printed; each must be clearly above the 0 of
always predicting "not water" (no ordering between them is asserted: a few epochs cannot settle it,
``benchmarks/multimodal_real.py`` compares them over seeds).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.multimodal_real import MODELS, cut_s2_s1_tiles, train_and_test

EPOCHS = 3


@pytest.mark.slow
@pytest.mark.real_data
def test_s2_s1_fusion_maps_water_on_the_held_out_quadrant(real_data: Path, tmp_path: Path) -> None:
    tiles = cut_s2_s1_tiles(real_data / "sen1floods11_sample", tmp_path / "tiles")
    assert len(list((tiles / "test").glob("*_S1Hand.tif"))) == 16
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 64-px tiles: a second thread adds more waiting than work on a busy CPU
    try:
        results = {name: train_and_test(tiles, name, seed=0, epochs=EPOCHS) for name in MODELS}
    finally:
        torch.set_num_threads(threads)
    print(
        "sen1floods11 held-out quadrant, water IoU: "
        + ", ".join(f"{name} {r['water_iou']:.3f} (fit {r['fit_s']:.1f}s)" for name, r in results.items())
    )
    for name, result in results.items():
        assert result["water_iou"] > 0.25, (name, result)  # always "not water": 0
