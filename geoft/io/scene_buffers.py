"""The rolling buffers of scene prediction: source rows read once, finished output rows written in
strips, and the model's output shape learnt from the first tile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from geoft.tasks.tiled_inference import TiledInferenceParameters, run_tiles


class RowSource:
    """Normalised source rows of one column range, read once, in order, into a rolling buffer.

    Tile rows move down the scene, so rows above the current tile are dropped and rows below are
    read ``read_rows`` at a time: each source row is read and normalised once per column panel.
    """

    def __init__(
        self,
        src: rasterio.io.DatasetReader,
        indexes: list[int],
        col_lo: int,
        col_hi: int,
        prepare: Callable[[np.ndarray, np.ndarray], torch.Tensor],
        read_rows: int,
    ) -> None:
        self.src, self.indexes, self.prepare, self.read_rows = src, indexes, prepare, read_rows
        self.col_lo, self.col_hi = col_lo, col_hi
        self.lo = self.hi = 0
        self.image = torch.empty(0)
        self.valid = np.zeros((0, col_hi - col_lo), dtype=bool)

    def rows(self, lo: int, hi: int) -> tuple[torch.Tensor, np.ndarray]:
        """Image ``[C, hi - lo, W]`` and validity ``[hi - lo, W]`` of source rows ``[lo, hi)``."""
        if lo < self.lo or lo > self.hi:  # not expected (rows only move down); restart cleanly
            self.lo = self.hi = lo
            self.image, self.valid = torch.empty(0), self.valid[:0]
        if hi > self.hi:
            end = min(self.src.height, max(hi, self.hi + self.read_rows))
            window = Window(self.col_lo, self.hi, self.col_hi - self.col_lo, end - self.hi)
            raw = self.src.read(self.indexes, window=window, out_dtype="float32")
            valid = self.src.dataset_mask(window=window) > 0
            fresh = self.prepare(raw, valid)
            keep = slice(lo - self.lo, None)
            self.image = torch.cat([self.image[:, keep], fresh], dim=1) if self.image.numel() else fresh
            self.valid = np.concatenate([self.valid[keep], valid])
            self.lo, self.hi = lo, end
        elif lo > self.lo:
            self.image, self.valid = self.image[:, lo - self.lo :], self.valid[lo - self.lo :]
            self.lo = lo
        return self.image[:, : hi - lo], self.valid[: hi - lo]


class PendingRows:
    """Finished output rows of one column panel, written in strips of ``rows`` (aligned writes)."""

    def __init__(self, rows: int, write: Callable[[torch.Tensor, np.ndarray, Window], None], c0: int) -> None:
        self.rows, self.write, self.c0 = rows, write, c0
        self.top = 0
        self.parts: list[tuple[torch.Tensor, np.ndarray]] = []
        self.count = 0

    def add(self, blended: torch.Tensor, nodata: np.ndarray) -> None:
        self.parts.append((blended, nodata))
        self.count += nodata.shape[0]
        if self.count >= self.rows:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        blended = torch.cat([b for b, _ in self.parts], dim=-2)
        nodata = np.concatenate([n for _, n in self.parts])
        self.write(blended, nodata, Window(self.c0, self.top, nodata.shape[1], nodata.shape[0]))
        self.top += nodata.shape[0]
        self.parts, self.count = [], 0


class OutputShape:
    """The model's output dimensions before height and width (``(K,)`` for K classes), from the first
    tile that runs; a scene that starts with nodata runs one tile just to learn them."""

    def __init__(self) -> None:
        self.lead: tuple[int, ...] | None = None

    def learn(self, part: torch.Tensor) -> None:
        self.lead = tuple(part.shape[:-2])

    def probe(
        self, model_forward: Callable[..., Any], strip: torch.Tensor, p: TiledInferenceParameters
    ) -> tuple[int, ...]:
        part = run_tiles(model_forward, strip, [0], [0], p)[0][0]
        self.learn(part)
        assert self.lead is not None
        return self.lead


def covering(starts: list[int], lo: int, hi: int, crop: int) -> list[int]:
    """The tile starts whose tiles of size ``crop`` overlap ``[lo, hi)``."""
    return [s for s in starts if s < hi and s + crop > lo]


def panels_of(width: int, max_width: int) -> list[tuple[int, int]]:
    """Column ranges of at most ``max_width`` (a multiple of 256 where possible, for aligned writes)."""
    step = max(256, max_width - max_width % 256) if max_width >= 256 else max_width
    return [(c, min(c + step, width)) for c in range(0, width, step)]
