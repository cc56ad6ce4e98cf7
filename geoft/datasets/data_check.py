"""The full data check run before ``fit``/``validate``/``test``: every file of a split read once.

Each sample is checked as ``geoft validate-data`` checks it (:func:`geoft.datasets.validation.check_sample`),
in a thread pool (rasterio releases the GIL while decoding). Where the statistics are still to be computed,
the same read of each file feeds them too (:func:`check_with_statistics`). A sample's "no problem" verdict is cached
per file (path, size, mtime) next to the statistics cache, so a second run reads nothing and a changed
file is checked again.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geoft.datasets.problems import DataProblem, problem_from_error
from geoft.errors import DataError

if TYPE_CHECKING:
    from geoft.datasets.statistics import DatasetStatistics

DataCheckMode = Literal["full", "headers", "off"]
CACHE_NAME = "data-check/verdicts.json"  # a folder of its own, beside the statistics files


def _signature(path: Path | None) -> list[Any] | None:
    if path is None:
        return None
    st = os.stat(path)
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def _settings_key(dataset: Any) -> str:
    """What the verdict depends on besides the files (classes, ignore_index, nodata handling)."""
    reader = dataset.reader
    text = repr(
        (
            type(dataset).__name__,
            getattr(dataset, "num_classes", None),
            getattr(dataset, "ignore_index", None),
            getattr(dataset, "reduce_zero_label", None),
            reader.no_data_replace,
            getattr(reader, "no_label_replace", None),
            getattr(reader, "dataset_bands", None),
            getattr(reader, "output_bands", None),
        )
    )
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _sample_key(record: Any) -> tuple[str, list[Any]]:
    image = _signature(record.image)
    label_path = getattr(record, "label", None)
    label = _signature(label_path) if isinstance(label_path, (str, Path)) else None
    return f"{image[0]}|{label[0] if label else ''}", [image[1:], label[1:] if label else None]


def _cache_path(dataset: Any, cache_dir: str | Path | None) -> Path | None:
    from geoft.datasets.statistics import cache_locations

    for base in cache_locations(dataset, cache_dir):
        path = base / CACHE_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path.parent, os.W_OK):
            return path
    return None


def _load(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {}  # a damaged cache is rebuilt
    return data if isinstance(data, dict) else {}


def _store(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _check_and_measure(dataset: Any, index: int, split: str, measure: bool) -> tuple[list[DataProblem], Any]:
    """One sample's problems and (``measure``) its statistics, from one read of its files."""
    from geoft.datasets.raster import read_each_file_once
    from geoft.datasets.statistics import measure_sample
    from geoft.datasets.validation import check_sample

    record = dataset.samples[index]
    with read_each_file_once():
        problems = check_sample(dataset, index, split)
        if not measure or any(p.severity == "error" for p in problems):
            return problems, None
        try:
            return problems, measure_sample(dataset, record)
        except DataError as err:  # the check read the same files, so this is not expected
            return problems + [problem_from_error(err, split, str(record.image))], None


def _run(
    dataset: Any,
    split: str,
    cache_dir: str | Path | None,
    workers: int | None,
    measure: set[int],
) -> tuple[list[DataProblem], int, dict[int, Any]]:
    """Check every sample not known clean (and every one in ``measure``), measuring those in ``measure``."""
    from geoft.datasets.statistics import default_workers

    cache_file = _cache_path(dataset, cache_dir)
    cache = _load(cache_file)
    settings = _settings_key(dataset)
    known = cache.get(settings, {})
    to_read: list[tuple[int, str, list[Any]]] = []
    for index, record in enumerate(dataset.samples):
        try:
            key, signature = _sample_key(record)
        except OSError:
            to_read.append((index, "", []))  # unreadable file: check_sample reports it
            continue
        if known.get(key) != signature or index in measure:
            to_read.append((index, key, signature))
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        results = list(
            pool.map(lambda item: _check_and_measure(dataset, item[0], split, item[0] in measure), to_read)
        )
    problems: list[DataProblem] = []
    measures: dict[int, Any] = {}
    for (index, key, signature), (found, measured) in zip(to_read, results):
        problems += found
        if measured is not None:
            measures[index] = measured
        if key and not any(p.severity == "error" for p in found):
            known[key] = signature
    if cache_file is not None and to_read:
        cache[settings] = known
        try:
            _store(cache_file, cache)
        except OSError:
            pass  # the cache only saves time; the verdict above stands
    return problems, len(to_read), measures


def check_dataset_files(
    dataset: Any, split: str, cache_dir: str | Path | None = None, workers: int | None = None
) -> tuple[list[DataProblem], int]:
    """Problems of every sample of ``dataset``, and how many samples were actually read (cache misses)."""
    problems, read, _ = _run(dataset, split, cache_dir, workers, set())
    return problems, read


def check_with_statistics(
    dataset: Any,
    split: str,
    cache_dir: str | Path | None = None,
    max_samples: int | None = None,
    workers: int | None = None,
) -> tuple[list[DataProblem], tuple[DatasetStatistics, Path] | None]:
    """The full check of ``dataset`` and its statistics (cached as by
    :func:`~geoft.datasets.statistics.cached_statistics`), from one read of each file.

    Returns the problems and ``(statistics, cache file)``; no statistics when an error was found.
    """
    from geoft.datasets.statistics import (
        combine_measures,
        load_cached_statistics,
        statistics_picks,
        store_statistics,
    )

    cached = load_cached_statistics(dataset, cache_dir, max_samples)
    if cached is not None:
        return check_dataset_files(dataset, split, cache_dir, workers)[0], cached
    picks = statistics_picks(len(dataset.samples), max_samples)
    problems, _, measures = _run(dataset, split, cache_dir, workers, set(picks))
    if any(p.severity == "error" for p in problems):
        return problems, None
    records = [dataset.samples[i] for i in picks]
    stats = combine_measures(dataset, records, [measures[i] for i in picks])
    return problems, (stats, store_statistics(dataset, stats, cache_dir, max_samples))
