"""Per-band mean/std and class counts of a dataset, computed once and cached next to the data.

The cache key hashes the file list (with sizes and modification times) and every option that
changes pixel values (band selection, scale, time layout), so a changed dataset is recomputed.
When the data folder is read-only the cache goes to ``cache_dir`` / ``$GEOFT_CACHE_DIR`` /
``~/.cache/geoft/statistics``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoft.datasets.classification import GenericNonGeoClassificationDataset
from geoft.datasets.pairing import CACHE_DIR_NAME
from geoft.datasets.pixelwise import GenericPixelwiseDataset
from geoft.datasets.segmentation import GenericNonGeoSegmentationDataset
from geoft.errors import DataError

Dataset = GenericPixelwiseDataset | GenericNonGeoClassificationDataset
CACHE_VERSION = 1


@dataclass
class DatasetStatistics:
    """Per-band statistics of the valid (non-nodata) pixels, and target statistics.

    ``class_counts`` holds pixels per class (segmentation) or images per class (classification);
    ``target_mean``/``target_std`` describe regression targets.
    """

    means: list[float]
    stds: list[float]
    mins: list[float]
    maxs: list[float]
    valid_pixels: list[int]
    num_samples: int
    bands: list[str] | None = None
    class_counts: dict[int, int] | None = None
    ignored_pixels: int = 0
    target_mean: float | None = None
    target_std: float | None = None
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.class_counts is not None:
            out["class_counts"] = {str(k): v for k, v in self.class_counts.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetStatistics:
        data = dict(data)
        if data.get("class_counts") is not None:
            data["class_counts"] = {int(k): int(v) for k, v in data["class_counts"].items()}
        return cls(**data)


class _Moments:
    """Streaming mean/variance per channel (Chan et al. parallel combination, float64)."""

    def __init__(self, channels: int) -> None:
        self.n = np.zeros(channels, dtype=np.int64)
        self.mean = np.zeros(channels)
        self.m2 = np.zeros(channels)
        self.min = np.full(channels, np.inf)
        self.max = np.full(channels, -np.inf)

    def add(self, c: int, values: np.ndarray) -> None:
        if values.size == 0:
            return
        x = values.astype(np.float64)
        mean_b = float(x.mean())
        self._combine(c, x.size, mean_b, float(((x - mean_b) ** 2).sum()), float(x.min()), float(x.max()))

    def merge(self, other: _Moments) -> None:
        """Add the values ``other`` has seen (the same result as adding them here, per sample)."""
        for c in range(len(other.n)):
            if other.n[c]:
                self._combine(c, int(other.n[c]), other.mean[c], other.m2[c], other.min[c], other.max[c])

    def _combine(self, c: int, n_b: int, mean_b: float, m2_b: float, min_b: float, max_b: float) -> None:
        n_a = self.n[c]
        delta = mean_b - self.mean[c]
        total = n_a + n_b
        self.mean[c] += delta * n_b / total
        self.m2[c] += m2_b + delta**2 * n_a * n_b / total
        self.n[c] = total
        self.min[c] = min(self.min[c], min_b)
        self.max[c] = max(self.max[c], max_b)

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / np.maximum(self.n, 1))


@dataclass
class SampleMeasure:
    """What one sample adds to the statistics (``None`` moments: an all-nodata image, skipped)."""

    image: _Moments | None
    target: _Moments
    counts: dict[int, int]
    ignored: int = 0


def statistics_picks(count: int, max_samples: int | None) -> list[int]:
    """Indices of the samples the statistics read: all, or ``max_samples`` evenly spread."""
    if max_samples is not None and count > max_samples:
        return np.linspace(0, count - 1, max_samples).round().astype(int).tolist()
    return list(range(count))


def measure_sample(dataset: Dataset, record: Any) -> SampleMeasure:
    """Read one sample (image and target) for the statistics; thread-safe."""
    image, nodata, _ = dataset.reader.read_masked(record.image)
    targets = _Moments(1)
    counts: dict[int, int] = {}
    if nodata.all():
        return SampleMeasure(None, targets, counts)
    channels = image.shape[0]
    flat, bad = image.reshape(channels, -1), nodata.reshape(channels, -1)
    moments = _Moments(channels)
    for c in range(channels):
        moments.add(c, flat[c][~bad[c]])
    ignored = 0
    if isinstance(dataset, GenericNonGeoClassificationDataset):
        for k in record.classes or ():
            counts[k] = counts.get(k, 0) + 1
    elif record.label is not None and getattr(dataset, "pixel_targets", True):
        target = dataset.read_target(record)
        if isinstance(dataset, GenericNonGeoSegmentationDataset):
            ignore = dataset.ignore_index if dataset.ignore_index is not None else -(2**62)
            valid = target[(target >= 0) & (target != ignore)]
            ignored = int(target.size - valid.size)
            for k, v in enumerate(np.bincount(valid.ravel())):
                if v:
                    counts[k] = int(v)
        else:
            keep = np.isfinite(target)
            if dataset.ignore_index is not None:
                keep &= target != dataset.ignore_index
            ignored = int(target.size - keep.sum())
            targets.add(0, target[keep])
    return SampleMeasure(moments, targets, counts, ignored)


def combine_measures(
    dataset: Dataset, records: list[Any], measures: list[SampleMeasure]
) -> DatasetStatistics:
    """The statistics of the samples ``records`` from their :func:`measure_sample` results, in order."""
    moments: _Moments | None = None
    targets = _Moments(1)
    counts: dict[int, int] = {}
    ignored = 0
    skipped = []
    for record, measure in zip(records, measures):
        if measure.image is None:
            skipped.append(str(record.image))
            continue
        if moments is None:
            moments = _Moments(len(measure.image.n))
        moments.merge(measure.image)
        targets.merge(measure.target)
        for k, v in measure.counts.items():
            counts[k] = counts.get(k, 0) + v
        ignored += measure.ignored
    if moments is None:
        raise DataError(f"Cannot compute statistics of dataset {dataset.name!r}: every sample is nodata.")
    bands = dataset.reader.selected_bands
    regression = targets.n[0] > 0
    segmentation = isinstance(dataset, GenericNonGeoSegmentationDataset)
    return DatasetStatistics(
        means=moments.mean.tolist(),
        stds=moments.std().tolist(),
        mins=moments.min.tolist(),
        maxs=moments.max.tolist(),
        valid_pixels=moments.n.tolist(),
        num_samples=len(records) - len(skipped),
        bands=None if bands is None else [str(b) for b in bands],
        class_counts=dict(sorted(counts.items())) if counts or segmentation else None,
        ignored_pixels=ignored,
        target_mean=float(targets.mean[0]) if regression else None,
        target_std=float(targets.std()[0]) if regression else None,
        skipped=skipped,
    )


def compute_statistics(
    dataset: Dataset, max_samples: int | None = None, workers: int | None = None
) -> DatasetStatistics:
    """Read the dataset (or its first ``max_samples`` samples, evenly spread) and compute statistics,
    ``workers`` samples at a time (default: one per core, at most 8; rasterio decodes without the GIL)."""
    records = [dataset.samples[i] for i in statistics_picks(len(dataset.samples), max_samples)]
    if not records:
        raise DataError(f"Cannot compute statistics of dataset {dataset.name!r}: it has no samples.")
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        measures = list(pool.map(lambda record: measure_sample(dataset, record), records))
    return combine_measures(dataset, records, measures)


def default_workers() -> int:
    """Threads that read samples in parallel: one per core, at most 8."""
    return min(8, os.cpu_count() or 1)


def statistics_key(dataset: Dataset, max_samples: int | None = None) -> str:
    """Hash of the file list and of every option that changes pixel values."""
    h = hashlib.sha256()
    reader = dataset.reader
    options = {
        "version": CACHE_VERSION,
        "dataset_bands": reader.dataset_bands,
        "output_bands": reader.output_bands,
        "band_file_pattern": reader.band_file_pattern,
        "constant_scale": reader.constant_scale,
        "expand_temporal_dimension": reader.expand_temporal_dimension,
        "temporal_order": reader.temporal_order,
        "max_samples": max_samples,
        "type": type(dataset).__name__,
        "ignore_index": getattr(dataset, "ignore_index", None),
        "no_label_replace": getattr(dataset, "no_label_replace", None),
        "reduce_zero_label": getattr(dataset, "reduce_zero_label", None),
    }
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    series = getattr(reader, "series", {})
    for record in dataset.samples:
        dates = series[record.image].files[1:] if record.image in series else ()
        for path in (record.image, *dates, getattr(record, "label", None)):
            if path is None:
                continue
            st = path.stat()
            h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        classes = getattr(record, "classes", None)
        if classes is not None:
            h.update(repr(classes).encode())
    return h.hexdigest()[:20]


def default_cache_dir() -> Path:
    env = os.environ.get("GEOFT_CACHE_DIR")
    return Path(env) / "statistics" if env else Path.home() / ".cache" / "geoft" / "statistics"


def _writable(folder: Path) -> bool:
    """True if we may write in ``folder``; a folder without any write permission bit counts as
    read-only even for root (who could write anyway), to respect the owner's intent."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(folder, os.W_OK)


def cache_locations(dataset: Dataset, cache_dir: str | Path | None = None) -> list[Path]:
    """Folders where the statistics cache is looked for, preferred first."""
    root = dataset.data_root if dataset.data_root.is_dir() else dataset.data_root.parent
    out = []
    if _writable(root) or (root / CACHE_DIR_NAME).is_dir():
        out.append(root / CACHE_DIR_NAME)
    out.append(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _cache_name(dataset: Dataset, max_samples: int | None) -> str:
    return f"statistics-{statistics_key(dataset, max_samples)}.json"


def load_cached_statistics(
    dataset: Dataset, cache_dir: str | Path | None = None, max_samples: int | None = None
) -> tuple[DatasetStatistics, Path] | None:
    """The cached statistics of ``dataset`` and their file, or None when none are cached."""
    name = _cache_name(dataset, max_samples)
    for folder in cache_locations(dataset, cache_dir):
        path = folder / name
        if path.is_file():
            try:
                return DatasetStatistics.from_dict(json.loads(path.read_text())), path
            except (ValueError, TypeError, KeyError):
                pass  # a damaged cache entry is recomputed
    return None


def store_statistics(
    dataset: Dataset,
    stats: DatasetStatistics,
    cache_dir: str | Path | None = None,
    max_samples: int | None = None,
) -> Path:
    """Cache ``stats`` of ``dataset`` in the first writable cache location; returns the file."""
    name = _cache_name(dataset, max_samples)
    errors = []
    for folder in cache_locations(dataset, cache_dir):
        if folder.name == CACHE_DIR_NAME and not _writable(folder.parent):
            continue
        try:
            _write_json(folder / name, stats.to_dict())
            return folder / name
        except OSError as err:
            errors.append(f"{folder}: {err}")
    raise DataError(
        "Computed the dataset statistics but could not cache them anywhere: " + "; ".join(errors),
        hint="set GEOFT_CACHE_DIR to a writable folder, or give means and stds explicitly.",
    )


def cached_statistics(
    dataset: Dataset, cache_dir: str | Path | None = None, max_samples: int | None = None
) -> tuple[DatasetStatistics, Path]:
    """Statistics of ``dataset`` from the cache, computing and storing them on a miss.

    Returns the statistics and the cache file used.
    """
    cached = load_cached_statistics(dataset, cache_dir, max_samples)
    if cached is not None:
        return cached
    stats = compute_statistics(dataset, max_samples)
    return stats, store_statistics(dataset, stats, cache_dir, max_samples)


def datamodule_statistics(
    source: Any, split: str = "train", max_samples: int | None = None, use_cache: bool = True
) -> DatasetStatistics:
    """Statistics of one split of a datamodule (or its config dict / YAML file), for ``geoft compute_statistics``."""
    from geoft.datasets.validation import datamodule_from_config

    dm = source if hasattr(source, "build_dataset") else datamodule_from_config(source)
    dataset = dm.build_dataset(split)
    if use_cache:
        return cached_statistics(dataset, dm.stats_cache_dir, max_samples)[0]
    return compute_statistics(dataset, max_samples)
