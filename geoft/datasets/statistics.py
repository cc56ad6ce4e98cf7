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
        n_b, mean_b = x.size, float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n_a = self.n[c]
        delta = mean_b - self.mean[c]
        total = n_a + n_b
        self.mean[c] += delta * n_b / total
        self.m2[c] += m2_b + delta**2 * n_a * n_b / total
        self.n[c] = total
        self.min[c] = min(self.min[c], float(x.min()))
        self.max[c] = max(self.max[c], float(x.max()))

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / np.maximum(self.n, 1))


def compute_statistics(dataset: Dataset, max_samples: int | None = None) -> DatasetStatistics:
    """Read the dataset (or its first ``max_samples`` samples, evenly spread) and compute statistics."""
    records = dataset.samples
    if max_samples is not None and len(records) > max_samples:
        picks = np.linspace(0, len(records) - 1, max_samples).round().astype(int)
        records = [records[i] for i in picks]
    if not records:
        raise DataError(f"Cannot compute statistics of dataset {dataset.name!r}: it has no samples.")
    moments: _Moments | None = None
    targets = _Moments(1)
    counts: dict[int, int] = {}
    ignored = 0
    skipped = []
    segmentation = isinstance(dataset, GenericNonGeoSegmentationDataset)
    for record in records:
        image, nodata, _ = dataset.reader.read_masked(record.image)
        if nodata.all():
            skipped.append(str(record.image))
            continue
        channels = image.shape[0]
        flat, bad = image.reshape(channels, -1), nodata.reshape(channels, -1)
        if moments is None:
            moments = _Moments(channels)
        for c in range(channels):
            moments.add(c, flat[c][~bad[c]])
        if isinstance(dataset, GenericNonGeoClassificationDataset):
            for k in record.classes or ():
                counts[k] = counts.get(k, 0) + 1
        elif record.label is not None and getattr(dataset, "pixel_targets", True):
            target = dataset.read_target(record)
            if segmentation:
                valid = target[
                    (target >= 0)
                    & (target != (dataset.ignore_index if dataset.ignore_index is not None else -(2**62)))
                ]
                ignored += int(target.size - valid.size)
                for k, v in enumerate(np.bincount(valid.ravel())):
                    if v:
                        counts[k] = counts.get(k, 0) + int(v)
            else:
                keep = np.isfinite(target)
                if dataset.ignore_index is not None:
                    keep &= target != dataset.ignore_index
                ignored += int(target.size - keep.sum())
                targets.add(0, target[keep])
    if moments is None:
        raise DataError(f"Cannot compute statistics of dataset {dataset.name!r}: every sample is nodata.")
    bands = dataset.reader.selected_bands
    regression = targets.n[0] > 0
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
    for record in dataset.samples:
        for path in (record.image, getattr(record, "label", None)):
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


def cached_statistics(
    dataset: Dataset, cache_dir: str | Path | None = None, max_samples: int | None = None
) -> tuple[DatasetStatistics, Path]:
    """Statistics of ``dataset`` from the cache, computing and storing them on a miss.

    Returns the statistics and the cache file used.
    """
    key = statistics_key(dataset, max_samples)
    name = f"statistics-{key}.json"
    locations = cache_locations(dataset, cache_dir)
    for folder in locations:
        path = folder / name
        if path.is_file():
            try:
                return DatasetStatistics.from_dict(json.loads(path.read_text())), path
            except (ValueError, TypeError, KeyError):
                pass  # a damaged cache entry is recomputed below
    stats = compute_statistics(dataset, max_samples)
    errors = []
    for folder in locations:
        if folder.name == CACHE_DIR_NAME and not _writable(folder.parent):
            continue
        try:
            _write_json(folder / name, stats.to_dict())
            return stats, folder / name
        except OSError as err:
            errors.append(f"{folder}: {err}")
    raise DataError(
        "Computed the dataset statistics but could not cache them anywhere: " + "; ".join(errors),
        hint="set GEOFT_CACHE_DIR to a writable folder, or give means and stds explicitly.",
    )


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
