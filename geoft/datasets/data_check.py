"""The full data check run before ``fit``/``validate``/``test``: every file of a split read once.

Each sample is checked as ``geoft validate-data`` checks it (:func:`geoft.datasets.validation.check_sample`),
in a thread pool (rasterio releases the GIL while decoding). A sample's "no problem" verdict is cached
per file (path, size, mtime) next to the statistics cache, so a second run reads nothing and a changed
file is checked again.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from geoft.datasets.problems import DataProblem

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


def check_dataset_files(
    dataset: Any, split: str, cache_dir: str | Path | None = None, workers: int | None = None
) -> tuple[list[DataProblem], int]:
    """Problems of every sample of ``dataset``, and how many samples were actually read (cache misses)."""
    from geoft.datasets.validation import check_sample

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
        if known.get(key) != signature:
            to_read.append((index, key, signature))
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda item: check_sample(dataset, item[0], split), to_read))
    problems: list[DataProblem] = []
    for (_, key, signature), found in zip(to_read, results):
        problems += found
        if key and not any(p.severity == "error" for p in found):
            known[key] = signature
    if cache_file is not None and to_read:
        cache[settings] = known
        try:
            _store(cache_file, cache)
        except OSError:
            pass  # the cache only saves time; the verdict above stands
    return problems, len(to_read)
