"""Turn the usual ways a training run dies into clear :class:`~geoft.errors.GeoftError` messages.

* a NaN/inf loss stops training *before* its backward pass (:class:`TrainingGuard`), naming the step,
  the value, whether the batch itself held NaNs, and what to try;
* an out-of-memory error inside a step (:class:`OutOfMemoryGuard`, wrapping the task's steps in
  :func:`out_of_memory_guard`) becomes :class:`OutOfMemoryError` suggesting a smaller batch,
  ``bf16-mixed`` or tiled inference;
* a sample that fails to load is read again a few times (a storage hiccup passes), then named
  (split, index and file): a Python exception becomes a :class:`DataError` in the worker, and a worker that dies outright (segfault,
  ``os._exit``) gets a note on Lightning's error naming the sample it was loading.

Every geoft task returns a :class:`TrainingGuard` and an :class:`OutOfMemoryGuard` from
``configure_callbacks``, so both are on by default.
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from geoft.datasets.read_retry import load_with_retries
from geoft.errors import DataError, GeoftError

log = logging.getLogger(__name__)

SPLIT_ATTRIBUTES = ("train_dataset", "val_dataset", "test_dataset", "predict_dataset")
_WORKER_SLOTS = 256  # DataLoader worker ids tracked per dataset (more workers are not tracked)
_OOM_PATTERNS = ("out of memory", "can't allocate memory", "cannot allocate memory")


class NonFiniteLossError(GeoftError, FloatingPointError):
    """The training loss became NaN or infinite; training stopped before using it."""


class OutOfMemoryError(GeoftError, RuntimeError):
    """A step ran out of (GPU or host) memory."""


# -- out of memory ---------------------------------------------------------------------------------


def is_out_of_memory(err: BaseException) -> bool:
    """True for ``torch.OutOfMemoryError`` and the RuntimeErrors allocators raise when memory runs out."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    if isinstance(err, (RuntimeError, MemoryError)) and not isinstance(err, GeoftError):
        text = str(err).lower()
        return isinstance(err, MemoryError) or any(p in text for p in _OOM_PATTERNS)
    return False


def _batch_size(batch: Any) -> int | None:
    image = batch.get("image") if isinstance(batch, Mapping) else None
    return int(image.shape[0]) if isinstance(image, Tensor) and image.ndim > 0 else None


def out_of_memory_message(stage: str, err: BaseException, batch_size: int | None) -> OutOfMemoryError:
    """The :class:`OutOfMemoryError` for an allocator error raised during ``stage``."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    size = f" with batch size {batch_size}" if batch_size else ""
    if stage == "predict":
        hint = (
            "use tiled inference (model.init_args.tiled_inference_parameters: {crop: 224, stride: 192, "
            "batch_size: 4}) or a smaller data.init_args.batch_size; trainer.precision: bf16-mixed also "
            "halves activation memory"
        )
    else:
        smaller = f" (e.g. {max(1, batch_size // 2)})" if batch_size and batch_size > 1 else ""
        hint = (
            f"lower data.init_args.batch_size{smaller} (trainer.accumulate_grad_batches keeps the "
            "effective batch), train with trainer.precision: bf16-mixed, freeze the backbone "
            "(freeze_backbone: true) or use smaller chips; for large images in validation/test set "
            "tiled_inference_on_validation/testing"
        )
    return OutOfMemoryError(f"out of memory in the {stage} step{size}: {first}", hint=hint)


@contextmanager
def out_of_memory_guard(stage: str, batch: Any = None) -> Iterator[None]:
    """Re-raise an out-of-memory error inside the block as :class:`OutOfMemoryError` (other errors pass)."""
    try:
        yield
    except Exception as err:
        if is_out_of_memory(err):
            raise out_of_memory_message(stage, err, _batch_size(batch)) from err
        raise


# Task methods the OutOfMemoryGuard wraps: name -> (stage in the message, whether the first argument is the batch).
GUARDED_METHODS: dict[str, tuple[str, bool]] = {
    "training_step": ("training", True),
    "backward": ("training (backward pass)", False),
    "optimizer_step": ("training (optimizer)", False),
    "validation_step": ("validation", True),
    "test_step": ("test", True),
    "predict_step": ("predict", True),
}


def _guarded(method: Callable[..., Any], stage: str, takes_batch: bool) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        batch = (args[0] if args else kwargs.get("batch")) if takes_batch else None
        with out_of_memory_guard(stage, batch):
            return method(*args, **kwargs)

    guarded.__geoft_guarded__ = True  # type: ignore[attr-defined]
    return guarded


class OutOfMemoryGuard(Callback):
    """Turn out-of-memory errors in the task's steps into :class:`OutOfMemoryError` with what to try.

    For the length of a run it wraps the module's step methods (training, backward, optimizer,
    validation, test, predict) in :func:`out_of_memory_guard`, so the error is translated where it
    happens and every other callback, logger and run record sees the clear one.
    """

    def __init__(self) -> None:
        self._wrapped: list[tuple[LightningModule, str]] = []

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for name, (step, takes_batch) in GUARDED_METHODS.items():
            method = getattr(pl_module, name)
            if getattr(method, "__geoft_guarded__", False):
                continue
            setattr(pl_module, name, _guarded(method, step, takes_batch))
            self._wrapped.append((pl_module, name))

    def _unwrap(self) -> None:
        for module, name in self._wrapped:
            module.__dict__.pop(name, None)
        self._wrapped = []

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._unwrap()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._unwrap()


# -- samples loaded in DataLoader workers ----------------------------------------------------------


def sample_description(dataset: Any, index: int) -> str:
    """``sample 3 (path/to/file.tif)`` when the dataset knows its files, else ``sample 3``."""
    name = None
    filenames = getattr(dataset, "filenames", None)
    try:
        names = filenames() if callable(filenames) else filenames
        if names is not None and 0 <= index < len(names):
            name = str(names[index])
    except Exception:  # a description must never hide the real error
        name = None
    return f"sample {index} ({name})" if name else f"sample {index}"


class TrackedDataset(Dataset):
    """Wraps a dataset so that a failing sample is named, even when it kills its worker process.

    A read that fails with an I/O or data error is tried again, then becomes a
    :class:`~geoft.datasets.read_retry.SampleReadError` naming the split and file
    (:func:`~geoft.datasets.read_retry.load_with_retries`); any other Python exception in
    ``__getitem__`` becomes a :class:`DataError` naming the split, index and file. Each worker writes the index it is loading into
    shared memory, so after a hard crash :meth:`loading` tells which sample was in flight.
    Attributes of the wrapped dataset are reachable through the wrapper.
    """

    def __init__(self, dataset: Any, split: str) -> None:
        self.dataset = dataset
        self.split = split
        self._loading = multiprocessing.get_context().RawArray("q", _WORKER_SLOTS)
        for i in range(_WORKER_SLOTS):
            self._loading[i] = -1

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> Any:
        info = get_worker_info()
        slot = info.id if info is not None and info.id < _WORKER_SLOTS else None
        if slot is not None:
            self._loading[slot] = int(index)
        describe = functools.partial(sample_description, self.dataset, int(index))
        try:
            sample = load_with_retries(lambda: self.dataset[index], describe, self.split)
        except GeoftError:
            raise
        except Exception as err:
            raise DataError(
                f"loading {describe()} of the {self.split} dataset failed: {type(err).__name__}: {err}",
                hint="check the file (geoft validate-data -c CONFIG lists every unreadable file)",
            ) from err
        if slot is not None:
            self._loading[slot] = -1
        return sample

    def loading(self) -> list[int]:
        """Indices that workers started but did not finish loading."""
        return [int(v) for v in self._loading if v >= 0]


_WORKER_DIED = re.compile(r"DataLoader worker \(pids?.*?\) (exited unexpectedly|is killed)")


def worker_crash_note(datasets: Mapping[str, TrackedDataset], exception: BaseException) -> str | None:
    """What the dead DataLoader worker was loading, if ``exception`` is a worker crash."""
    # A dead worker shows as torch's RuntimeError, or, when the main process was just receiving a
    # batch's shared memory from it, as a reset connection or an EOFError while rebuilding the storage.
    died = isinstance(exception, RuntimeError) and _WORKER_DIED.search(str(exception))
    if not died and not isinstance(exception, (ConnectionError, EOFError)):
        return None
    found = [
        f"{sample_description(ds.dataset, index)} of the {split} dataset"
        for split, ds in datasets.items()
        for index in ds.loading()
    ]
    if not found:
        return None
    return (
        "geoft: a DataLoader worker died while loading "
        + "; ".join(found)
        + ". Check that file (geoft validate-data -c CONFIG), or set data.init_args.num_workers: 0 to see "
        "the error in the main process."
    )


# -- the callback ----------------------------------------------------------------------------------


def _non_finite_inputs(batch: Any) -> list[str]:
    found = []
    if isinstance(batch, Mapping):
        for key, value in batch.items():
            if isinstance(value, Tensor) and value.is_floating_point():
                bad = int((~torch.isfinite(value)).sum())
                if bad:
                    found.append(f"{key!r} has {bad} NaN/inf values of {value.numel()}")
    return found


class TrainingGuard(Callback):
    """Stop on a NaN/inf training loss and name samples that crash DataLoader workers.

    Args:
        check_loss: check every training loss before its backward pass (one device sync per step).
        track_samples: wrap the datamodule's datasets in :class:`TrackedDataset`.
    """

    def __init__(self, check_loss: bool = True, track_samples: bool = True) -> None:
        self.check_loss = check_loss
        self.track_samples = track_samples
        self._batch: Any = None
        self._batch_idx = -1
        self.tracked: dict[str, TrackedDataset] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        if not self.track_samples or datamodule is None:
            return
        for attribute in SPLIT_ATTRIBUTES:
            dataset = getattr(datamodule, attribute, None)
            if dataset is None or isinstance(dataset, TrackedDataset):
                continue
            tracked = TrackedDataset(dataset, attribute.removesuffix("_dataset"))
            setattr(datamodule, attribute, tracked)
            self.tracked[tracked.split] = tracked

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._unwrap(trainer)

    def _unwrap(self, trainer: Trainer) -> None:
        """Give the datamodule its own datasets back (also after a failed run)."""
        datamodule = getattr(trainer, "datamodule", None)
        for split, tracked in self.tracked.items():
            if datamodule is not None and getattr(datamodule, f"{split}_dataset", None) is tracked:
                setattr(datamodule, f"{split}_dataset", tracked.dataset)
        self.tracked = {}
        self._batch = None

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch, self._batch_idx = batch, batch_idx

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: Tensor) -> None:
        if not self.check_loss:
            return
        bad = not bool(torch.isfinite(loss.detach()).all())
        if trainer.world_size > 1:  # every rank must stop together, or the others hang in all-reduce
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise self._nan_error(trainer, loss)

    def _nan_error(self, trainer: Trainer, loss: Tensor) -> NonFiniteLossError:
        value = float(loss.detach().float().mean()) if loss.numel() else math.nan
        inputs = _non_finite_inputs(self._batch)
        where = f"step {trainer.global_step} (epoch {trainer.current_epoch}, batch {self._batch_idx})"
        if not math.isnan(value) and math.isfinite(value):
            what = "is finite here; another process's loss was NaN/inf"
        else:
            what = f"is {value}"
        message = f"the training loss {what} at {where}; stopped before training on it."
        filenames = self._batch.get("filename") if isinstance(self._batch, Mapping) else None
        if inputs:
            message += " The batch itself is not finite: " + "; ".join(inputs)
            if filenames:
                message += f" (files: {', '.join(Path(str(f)).name for f in list(filenames)[:8])})"
            message += "."
        hints = []
        if inputs:
            hints.append(
                "the inputs hold NaN/nodata: run `geoft validate-data -c CONFIG` and set "
                "data.init_args.no_data_replace (and no_label_replace)"
            )
        hints.append("lower the learning rate (e.g. by 10x) or add a warmup scheduler")
        if not inputs:
            hints.append("check the inputs for NaN/nodata with `geoft validate-data -c CONFIG`")
        if "16" in str(trainer.precision) and "bf16" not in str(trainer.precision):
            hints.append("fp16 overflows easily: use trainer.precision: bf16-mixed (or 32)")
        else:
            hints.append("with mixed precision use bf16-mixed rather than 16-mixed")
        return NonFiniteLossError(message, hint="; ".join(hints))

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        note = worker_crash_note(self.tracked, exception)
        self._unwrap(trainer)
        if note is None:
            return
        log.error(note)
        if hasattr(exception, "add_note"):
            exception.add_note(note)
        else:  # Python 3.10: no notes; keep the information in the message
            exception.args = (f"{exception.args[0] if exception.args else ''}\n{note}",)


__all__ = [
    "NonFiniteLossError",
    "OutOfMemoryError",
    "OutOfMemoryGuard",
    "TrackedDataset",
    "TrainingGuard",
    "is_out_of_memory",
    "out_of_memory_guard",
    "out_of_memory_message",
    "sample_description",
    "worker_crash_note",
]
