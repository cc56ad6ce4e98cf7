"""What the Data page shows about a pixel-wise regression dataset: the range and distribution of the
target rasters' values (paired with the images as segmentation masks are, by
:func:`geoft.app.data_summary.summarize`), and the targets that cannot train.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geoft.app.data_summary import DatasetSummary


@dataclass
class PixelValueSummary:
    """Valid target pixels of (a sample of) the value rasters: range, mean and a histogram."""

    rasters_read: int
    rasters_total: int
    valid_pixels: int = 0
    missing_pixels: int = 0  # NaN or the rasters' nodata
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    counts: list[int] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _valid_values(path: Path, problems: list[str]) -> tuple[np.ndarray, int]:
    import rasterio

    with rasterio.open(path) as src:
        if src.count != 1:
            problems.append(f"target {path.name} has {src.count} bands; a value raster needs one")
        values = src.read(1).astype("float64")
        nodata = src.nodata
    keep = np.isfinite(values) & (values != nodata if nodata is not None else True)
    return values[keep], int(keep.size - keep.sum())


def summarize_pixel_values(
    summary: DatasetSummary, max_reads: int = 64, bins: int = 20, seed: int = 0
) -> PixelValueSummary:
    """Read (a sample of ``max_reads`` of) the dataset's target rasters as float values."""
    targets = [lbl for _s, _i, lbl in summary.all_pairs() if lbl is not None]
    sample = targets if len(targets) <= max_reads else random.Random(seed).sample(targets, max_reads)
    out = PixelValueSummary(rasters_read=len(sample), rasters_total=len(targets))
    chunks: list[np.ndarray] = []
    for path in sample:
        values, missing = _valid_values(path, out.problems)
        chunks.append(values)
        out.missing_pixels += missing
    values = np.concatenate(chunks) if chunks else np.empty(0)
    out.valid_pixels = int(values.size)
    if not targets:
        out.problems.append("no target rasters found: training needs a value raster per image")
    elif values.size == 0:
        out.problems.append("the target rasters hold no valid value (all NaN or nodata)")
    else:
        out.low, out.high, out.mean = float(values.min()), float(values.max()), float(values.mean())
        counts, edges = np.histogram(values, bins=bins)
        out.counts, out.edges = counts.tolist(), edges.tolist()
    return out
