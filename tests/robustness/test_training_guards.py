"""NaN losses, out-of-memory errors and crashing DataLoader workers end in clear GeoftErrors."""

from __future__ import annotations

import os
from typing import Any

import lightning
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from geoft.errors import DataError, GeoftError
from geoft.tasks import PixelwiseRegressionTask, SemanticSegmentationTask
from geoft.training_guards import NonFiniteLossError, OutOfMemoryError, TrainingGuard


def _collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        k: torch.stack([s[k] for s in samples])
        if isinstance(samples[0][k], Tensor)
        else [s[k] for s in samples]
        for k in samples[0]
    }


class Chips(Dataset):
    """Random 3-band 16x16 chips with a 2-class mask; ``nan_at``: indices whose image is partly NaN;
    ``fail_at``: index whose loading raises (``"raise"``) or kills the worker process (``"exit"``)."""

    def __init__(
        self, n: int = 8, nan_at: tuple[int, ...] = (), fail_at: int | None = None, how: str = "raise"
    ) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, 16, 16, generator=g)
        for i in nan_at:
            self.images[i, 1, 4:8, 4:8] = float("nan")
        self.masks = (self.images[:, 0] > 0).long()
        self.fail_at, self.how = fail_at, how

    def filenames(self) -> list[str]:
        return [f"/data/chip_{i}.tif" for i in range(len(self))]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i == self.fail_at:
            if self.how == "exit":
                os._exit(3)  # a hard crash, like a segfault in a raster driver
            raise ValueError("TIFFReadDirectory: corrupt strip")
        return {"image": self.images[i], "mask": self.masks[i], "filename": f"/data/chip_{i}.tif"}


class ChipsModule(lightning.LightningDataModule):
    def __init__(self, dataset: Dataset, batch_size: int = 4, num_workers: int = 0) -> None:
        super().__init__()
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.train_dataset: Dataset | None = None

    def setup(self, stage: str) -> None:
        self.train_dataset = self.dataset

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=_collate
        )


def _trainer(**kwargs: Any) -> lightning.Trainer:
    return lightning.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        **kwargs,
    )


def _seg_task(model: nn.Module | None = None, lr: float = 1e-2) -> SemanticSegmentationTask:
    return SemanticSegmentationTask(
        model=model or nn.Conv2d(3, 2, 3, padding=1), model_args={"num_classes": 2}, lr=lr, plot_on_val=0
    )


# -- NaN / inf loss ---------------------------------------------------------------------------------


def test_nan_input_batch_stops_training_before_the_update() -> None:
    task = _seg_task()
    before = {k: v.clone() for k, v in task.state_dict().items()}
    dm = ChipsModule(Chips(n=8, nan_at=(5,)), batch_size=4)
    with pytest.raises(NonFiniteLossError) as info:
        _trainer().fit(task, datamodule=dm)
    text = str(info.value)
    # the first batch (0..3) is clean and trained on; the second holds chip 5 with NaNs
    assert "at step 1 (epoch 0, batch 1)" in text
    assert "loss is nan" in text
    assert "'image' has 16 NaN/inf values of 3072" in text and "chip_5.tif" in text
    assert "geoft validate-data" in text and "no_data_replace" in text
    assert "lower the learning rate" in text and "bf16-mixed" in text
    after = task.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert any(not torch.equal(before[k], after[k]) for k in before), "the clean first batch trained"


def test_diverging_loss_names_inf_and_suggests_bf16_for_fp16() -> None:
    class Exploding(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x[:, 0] * torch.tensor(1e38) * torch.tensor(1e38)  # overflows float32 to inf

    task = PixelwiseRegressionTask(model=Exploding(), loss="mse", lr=1e-3, plot_on_val=0)
    task.model.dummy = nn.Parameter(torch.zeros(1))  # something to optimise
    dm = ChipsModule(Chips(n=4), batch_size=4)
    with pytest.raises(NonFiniteLossError) as info:
        _trainer().fit(task, datamodule=dm)
    text = str(info.value)
    assert "loss is inf at step 0" in text
    assert "NaN/inf values" not in text  # the inputs are fine: no wrong accusation
    assert "check the inputs for NaN/nodata" in text


def test_guard_can_be_switched_off_and_then_trains_on_nan() -> None:
    class NoGuardTask(SemanticSegmentationTask):
        def configure_callbacks(self) -> list[Any]:
            return [TrainingGuard(check_loss=False)]

    task = NoGuardTask(model=nn.Conv2d(3, 2, 3, padding=1), model_args={"num_classes": 2}, plot_on_val=0)
    _trainer().fit(task, datamodule=ChipsModule(Chips(n=4, nan_at=(1,)), batch_size=4))
    assert not torch.isfinite(task.model.weight).all()  # what the guard prevents by default


# -- out of memory --------------------------------------------------------------------------------


class OOMForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class _OOMBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")


class OOMBackward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return _OOMBackward.apply(self.conv(x))


def test_out_of_memory_in_forward_suggests_smaller_batch_and_bf16() -> None:
    with pytest.raises(OutOfMemoryError) as info:
        _trainer().fit(_seg_task(OOMForward()), datamodule=ChipsModule(Chips(n=8), batch_size=8))
    text = str(info.value)
    assert "out of memory in the training step with batch size 8" in text
    assert "Tried to allocate 20.00 GiB" in text
    assert "batch_size (e.g. 4)" in text and "bf16-mixed" in text
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)


def test_out_of_memory_in_backward_is_wrapped_too() -> None:
    with pytest.raises(OutOfMemoryError, match=r"training \(backward pass\).*8.00 GiB"):
        _trainer().fit(_seg_task(OOMBackward()), datamodule=ChipsModule(Chips(n=4), batch_size=4))


def test_out_of_memory_in_predict_suggests_tiled_inference() -> None:
    loader = DataLoader(Chips(n=2), batch_size=2, collate_fn=_collate)
    with pytest.raises(OutOfMemoryError) as info:
        _trainer().predict(_seg_task(OOMForward()), loader)
    assert "predict step with batch size 2" in str(info.value)
    assert "tiled_inference_parameters" in str(info.value)


def test_other_runtime_errors_are_not_disguised_as_oom() -> None:
    class Broken(nn.Conv2d):
        def forward(self, x: Tensor) -> Tensor:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="cannot be multiplied") as info:
        _trainer().fit(_seg_task(Broken(3, 2, 1)), datamodule=ChipsModule(Chips(n=4), batch_size=4))
    assert not isinstance(info.value, GeoftError)


# -- DataLoader workers -----------------------------------------------------------------------------


def test_exception_in_worker_names_sample_and_file() -> None:
    dm = ChipsModule(Chips(n=8, fail_at=6), batch_size=2, num_workers=1)
    with pytest.raises(DataError) as info:
        _trainer().fit(_seg_task(), datamodule=dm)
    text = str(info.value)
    assert "loading sample 6 (/data/chip_6.tif) of the train dataset failed" in text
    assert "ValueError: TIFFReadDirectory: corrupt strip" in text
    assert "geoft validate-data" in text
    assert dm.train_dataset is dm.dataset  # the wrapper is removed again after the run


@pytest.mark.timeout(120)
def test_worker_killed_while_loading_names_the_sample(caplog: pytest.LogCaptureFixture) -> None:
    dm = ChipsModule(Chips(n=8, fail_at=5, how="exit"), batch_size=1, num_workers=1)
    # torch reports the dead worker, or (when a batch was in transit) a reset connection or an EOFError
    with pytest.raises((RuntimeError, ConnectionResetError, EOFError)):
        _trainer().fit(_seg_task(), datamodule=dm)
    # the note is logged as an error, and added to the exception (torch may replace that exception by a
    # second report of the same dead worker while Lightning tears down, so the log is what we check)
    notes = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "a DataLoader worker died while loading sample 5 (/data/chip_5.tif) of the train dataset" in notes
    assert "num_workers: 0" in notes


@pytest.mark.parametrize(
    "exception",
    [
        RuntimeError("DataLoader worker (pid(s) 123) exited unexpectedly"),
        ConnectionResetError(104, "Connection reset by peer"),
        EOFError(),  # the worker died while the main process rebuilt a batch's shared memory
    ],
)
def test_every_form_of_a_dead_worker_is_recognised(exception: BaseException) -> None:
    from geoft.training_guards import TrackedDataset, worker_crash_note

    tracked = TrackedDataset(Chips(n=8), "train")
    tracked._loading[0] = 5  # what a worker writes before loading sample 5
    note = worker_crash_note({"train": tracked}, exception)
    assert note is not None and "sample 5 (/data/chip_5.tif) of the train dataset" in note
    assert worker_crash_note({"train": tracked}, ValueError("unrelated")) is None
    tracked._loading[0] = -1  # nothing in flight: not a worker crash we can name
    assert worker_crash_note({"train": tracked}, exception) is None
