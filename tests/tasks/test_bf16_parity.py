"""Issue 6: bf16 never trades away accuracy silently. Fine-tuning the app's default preset
(Prithvi tiny + UPerNet) on a small demo dataset with ``bf16-mixed`` reaches the same validation mIoU
and loss as ``32-true``, within the seed-to-seed noise of fp32 training.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.demo_finetune import app_demo_config, fit_config  # noqa: E402

N_TRAIN, N_VAL, EPOCHS = 16, 8, 16
# Noise measured on this very setup (16 train / 8 val chips, 16 epochs, model seeds 0-7, 2026-11-29):
# final fp32 val mIoU 0.655 +- 0.028 (std; range 0.617-0.695), val loss 0.444 +- 0.016; bf16 minus fp32
# at equal seed: mIoU -0.008..+0.024, loss -0.020..+0.022. Tolerances: about 2 seed-std for mIoU and
# 2.5 for the loss (2 std, 0.032, is too close to the 0.022 seen), well under what a bf16 problem costs
# (an untrained model sits near 0.15 mIoU and 1.8 loss).
MIOU_TOLERANCE = 0.06
LOSS_TOLERANCE = 0.04


@pytest.fixture
def one_thread() -> Any:
    """One intra-op thread keeps the run time steady on a busy 2-core machine (see test_demo_finetune)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_bf16_mixed_matches_fp32_on_the_demo(tmp_path: Path, one_thread: None) -> None:
    config = app_demo_config(tmp_path, N_TRAIN, N_VAL)
    fp32 = fit_config(config, "32-true", EPOCHS)
    bf16 = fit_config(config, "bf16-mixed", EPOCHS)

    curves = {
        "32-true": [round(e.val_miou, 3) for e in fp32],
        "bf16-mixed": [round(e.val_miou, 3) for e in bf16],
    }
    # both learned: parity between two untrained models would prove nothing
    assert fp32[-1].val_miou > 0.5 and bf16[-1].val_miou > 0.5, curves
    assert abs(bf16[-1].val_miou - fp32[-1].val_miou) <= MIOU_TOLERANCE, curves
    assert abs(bf16[-1].val_loss - fp32[-1].val_loss) <= LOSS_TOLERANCE, (
        fp32[-1].val_loss,
        bf16[-1].val_loss,
    )
    # bf16 really ran in bf16: the runs differ (identical curves would mean autocast did nothing)
    assert any(a.val_loss != b.val_loss for a, b in zip(fp32, bf16))
