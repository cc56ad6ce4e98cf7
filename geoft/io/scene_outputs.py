"""Output rasters of scene prediction: opened on the first block, written block by block, and
removed again (with every temporary file) when anything fails, e.g. a full disk.

Beside the class map, an uncertainty raster (:func:`pixel_uncertainty`) can be written from the same
blended logits, block by block: where more labels would help most.

Writes run on one background thread (:class:`BackgroundWriter`), so that GDAL's compression and
writing overlap the model's next tiles; at most ``depth`` blocks wait, which bounds the memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from geoft.errors import ConfigError
from geoft.io.geotiff import describe_classes, float_band_names, output_profile, write_failure
from geoft.storage import StorageError, storage_error, temporary_path
from geoft.task_kinds import TaskKind

Task = TaskKind | str  # a pixel-wise kind: segmentation or regression
UNCERTAINTIES = ("entropy", "margin")


@dataclass(frozen=True)
class Uncertainty:
    """Which per-pixel uncertainty to write (``entropy`` or ``margin``), and where."""

    kind: str
    path: Path

    @classmethod
    def beside(cls, kind: str | None, dst_path: Path, task: Task) -> Uncertainty | None:
        """``<dst stem>_<kind><suffix>`` beside the class map; None when ``kind`` is None."""
        if kind is None:
            return None
        if kind not in UNCERTAINTIES:
            raise ConfigError(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {kind!r}")
        if task is not TaskKind.SEGMENTATION:
            raise ConfigError("uncertainty only applies to segmentation")
        return cls(kind, dst_path.with_name(f"{dst_path.stem}_{kind}{dst_path.suffix or '.tif'}"))


def pixel_uncertainty(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """``[..., h, w]`` uncertainty of ``[..., K, h, w]`` logits, class axis -3.

    ``entropy``: ``-sum p log p`` of the softmax (nats; 0 for a one-hot prediction, ``log K`` for a
    uniform one). ``margin``: the top class's probability minus the runner-up's (1 sure, 0 a tie:
    *small* margins mark the uncertain pixels).
    """
    logits = logits.float()
    if kind == "entropy":
        probs = torch.softmax(logits, dim=-3)
        return -(probs * torch.log_softmax(logits, dim=-3)).sum(dim=-3)
    if kind == "margin":
        top = torch.softmax(logits, dim=-3).topk(2, dim=-3).values
        return top.select(-3, 0) - top.select(-3, 1)
    raise ConfigError(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {kind!r}")


class BackgroundWriter:
    """Runs ``write(blended, nodata, window)`` calls on one thread, in order, at most ``depth`` queued.

    An error of a write is raised in the caller's thread at the next :meth:`submit` or at :meth:`drain`.
    """

    def __init__(self, write: Callable[[torch.Tensor, np.ndarray, Window], None], depth: int = 2) -> None:
        self._write, self._depth = write, depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geoft-scene-writer")
        self._pending: deque[Future[None]] = deque()

    def submit(self, blended: torch.Tensor, nodata: np.ndarray, window: Window) -> None:
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write, blended, nodata, window))

    def drain(self) -> None:
        """Wait for every queued write; raises the first failure."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self.close()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._pending.clear()


def storage_cause(
    err: BaseException, tmp_paths: list[tuple[Path, Path]], dst_path: Path
) -> StorageError | None:
    if not isinstance(err, Exception):  # KeyboardInterrupt & co. stay what they are
        return None
    for tmp, final in tmp_paths:
        found = write_failure(err, final, tmp)
        if found is not None:
            return found
    return storage_error(err, dst_path, "the prediction")


def discard(writers: dict[str, Any], tmp_paths: list[tuple[Path, Path]]) -> None:
    """After a failure: close what is open (errors ignored: the first one is reported) and remove
    every temporary file, so neither half a raster nor a temporary file is left behind."""
    for dst in writers.values():
        try:
            dst.close()
        except Exception:  # noqa: S110 - a full disk fails the close too; the cause is raised already
            pass
    writers.clear()
    for tmp, _ in tmp_paths:
        tmp.unlink(missing_ok=True)


def open_outputs(
    blended: torch.Tensor,
    task: Task,
    writers: dict[str, Any],
    tmp_paths: list[tuple[Path, Path]],
    src: rasterio.io.DatasetReader,
    dst_path: Path,
    probabilities_path: str | Path | None,
    class_names: Sequence[str] | None,
    class_colors: Sequence[str | Sequence[int]] | None,
    uncertainty: Uncertainty | None = None,
) -> None:
    common = {"height": src.height, "width": src.width, "crs": src.crs, "transform": src.transform}
    if task is TaskKind.SEGMENTATION:
        if blended.ndim != 3:
            raise ValueError(
                f"segmentation model must return [n, K, h, w] logits, got per-tile {tuple(blended.shape)}"
            )
        num_classes = blended.shape[0]
        targets = [
            (
                "prediction",
                dst_path,
                output_profile(count=1, kind="classes", num_classes=num_classes, **common),
            )
        ]
        if probabilities_path is not None:
            prof = output_profile(count=num_classes, kind="float", num_classes=None, **common)
            targets.append(("probabilities", Path(probabilities_path), prof))
        if uncertainty is not None:
            prof = output_profile(count=1, kind="float", num_classes=None, **common)
            targets.append(("uncertainty", uncertainty.path, prof))
    else:
        if blended.ndim == 3 and blended.shape[0] != 1:
            raise ValueError(
                f"regression model must return one value per pixel, got {blended.shape[0]} channels"
            )
        targets = [
            ("prediction", dst_path, output_profile(count=1, kind="float", num_classes=None, **common))
        ]
    for key, final, profile in targets:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(final)
        tmp_paths.append((tmp, final))  # before opening: a failed open may leave a file to remove
        dst = rasterio.open(tmp, "w", **profile)
        writers[key] = dst
        if key == "prediction" and task is TaskKind.SEGMENTATION:
            describe_classes(dst, class_names, class_colors, blended.shape[0])
        elif key == "probabilities":
            names = (
                list(class_names)
                if class_names is not None
                else [f"class_{i}" for i in range(blended.shape[0])]
            )
            float_band_names(dst, [f"p({n})" for n in names])
        elif key == "uncertainty":
            float_band_names(dst, [uncertainty.kind])  # type: ignore[union-attr]
        else:
            float_band_names(dst, ["prediction"])


def write_block(
    blended: torch.Tensor,
    nodata: np.ndarray,
    window: Window,
    task: Task,
    writers: dict[str, Any],
    tmp_paths: list[tuple[Path, Path]],
    src: rasterio.io.DatasetReader,
    dst_path: Path,
    probabilities_path: str | Path | None,
    class_names: Sequence[str] | None,
    class_colors: Sequence[str | Sequence[int]] | None,
    uncertainty: Uncertainty | None = None,
) -> None:
    if not writers:
        open_outputs(
            blended, task, writers, tmp_paths, src, dst_path, probabilities_path, class_names,
            class_colors, uncertainty,
        )  # fmt: skip
    pred = writers["prediction"]
    if task is TaskKind.SEGMENTATION:
        classes = blended.argmax(0).cpu().numpy().astype(pred.dtypes[0])
        classes[nodata] = pred.nodata
        pred.write(classes, 1, window=window)
        if "probabilities" in writers:
            probs = torch.softmax(blended, dim=0).float().cpu().numpy()
            probs[:, nodata] = np.nan
            writers["probabilities"].write(probs, window=window)
        if uncertainty is not None:
            values = pixel_uncertainty(blended, uncertainty.kind).cpu().numpy()
            values[nodata] = np.nan
            writers["uncertainty"].write(values, 1, window=window)
    else:
        values = blended.reshape(blended.shape[-2:]).float().cpu().numpy()
        values[nodata] = np.nan
        pred.write(values, 1, window=window)
