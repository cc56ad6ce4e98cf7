"""The dates and location a datamodule reads reach the backbone: a Prithvi ``_tl`` model's output
changes with them, directly and through TemporalWrapper; a model without the encodings does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geoft.tasks import SemanticSegmentationTask
from tests.data.conftest import write_tif
from tests.data.test_data_dates import segmentation


def batch_for(root: Path, dates: tuple[str, str]) -> dict:
    """A batch of one sample, two dates (named ``dates``), identical pixels whatever the dates."""
    rng = np.random.default_rng(0)
    for old in root.glob("img/*.tif"):
        old.unlink()
    for date in dates:
        write_tif(root / "img" / f"a_{date}.tif", rng.random((2, 32, 32), dtype=np.float32))
    write_tif(root / "lbl" / "a_mask.tif", np.zeros((32, 32), np.uint8))
    dm = segmentation(
        root,
        time_grep="{sample}_{date:%Y%m%d}.tif",
        use_metadata=True,
        batch_size=1,
        means=[0.5, 0.5],
        stds=[0.3, 0.3],
        data_check="headers",
    )
    dm.setup("fit")
    return dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)


def segmentation_task(backbone: str, temporal: bool) -> SemanticSegmentationTask:
    args = dict(
        backbone=backbone,
        backbone_in_chans=2,
        backbone_img_size=32,
        backbone_depth=1,
        decoder="FCNDecoder",
        num_classes=2,
    )
    if temporal:
        args.update(backbone_use_temporal=True, backbone_temporal_pooling="mean")
    else:
        args.update(backbone_num_frames=2)
    torch.manual_seed(0)
    return SemanticSegmentationTask(model_factory="EncoderDecoderFactory", model_args=args).eval()


@pytest.mark.parametrize("temporal", [False, True], ids=["prithvi_frames", "temporal_wrapper"])
def test_dates_and_location_reach_the_backbone(tmp_path: Path, temporal: bool) -> None:
    spring = batch_for(tmp_path, ("20200301", "20200415"))
    autumn = batch_for(tmp_path, ("20200901", "20201015"))
    assert torch.equal(spring["image"], autumn["image"])
    assert spring["temporal_coords"].tolist() == [[[2020.0, 61.0], [2020.0, 106.0]]]
    moved = {**spring, "location_coords": spring["location_coords"] + torch.tensor([[10.0, -20.0]])}
    with torch.no_grad():
        tl = segmentation_task("prithvi_eo_v2_tiny_tl", temporal)
        outputs = [tl._infer(b, tiled=False).output for b in (spring, autumn, moved)]
        assert not torch.allclose(outputs[0], outputs[1])  # other dates
        assert not torch.allclose(outputs[0], outputs[2])  # another place
        plain = segmentation_task("prithvi_eo_tiny", temporal)  # no time/location encoding
        same = [plain._infer(b, tiled=False).output for b in (spring, autumn, moved)]
        assert torch.equal(same[0], same[1]) and torch.equal(same[0], same[2])
