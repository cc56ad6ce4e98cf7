"""What the Data page shows about a scalar-regression dataset: the labels file of each split, how many
images it gives a value, the range of the values, and the images or rows that do not pair.

Layouts: split folders (``train/``, ``val/``, ``test/``) or one folder, each with an image folder and a
labels file beside it (``filename,value[,value...]`` rows, comma or tab separated, an optional header
row). The reading is :class:`geoft.datasets.scalar_regression.GenericNonGeoScalarRegressionDataset`'s,
the one training uses, in its non-strict mode.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoft.app.data_summary import image_band_names
from geoft.app.dataset_layout import labelled_folders, pick, read_labelled, sort_problems, training_splits
from geoft.datasets.labels_file import HEADER_NAMES, read_labels_file

LABEL_SUFFIXES = (".csv", ".tsv", ".txt")
NO_LABELS_FILE = (
    "no labels file found: put a CSV of 'filename,value' rows next to the image folder "
    "(e.g. train/biomass.csv beside train/images/)"
)


@dataclass
class ScalarSplit:
    name: str
    image_dir: Path
    labels_file: Path | None
    values: list[float] = field(default_factory=list)  # the first value of each paired image


@dataclass
class ScalarSummary:
    """Everything the Data page displays for one value (or a few) per image."""

    root: Path
    splits: list[ScalarSplit]
    labels_files_found: list[str]
    labels_file_name: str | None
    value_names: list[str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    size: tuple[int, int] | None = None
    band_names: list[str] = field(default_factory=list)

    @property
    def image_count(self) -> int:
        return sum(len(s.values) for s in self.splits)

    @property
    def value_range(self) -> tuple[float, float] | None:
        values = [v for s in self.splits for v in s.values if math.isfinite(v)]
        return (min(values), max(values)) if values else None

    @property
    def split_sizes(self) -> dict[str, int]:
        return {s.name: len(s.values) for s in self.splits}


def labels_files(folder: Path) -> list[Path]:
    """Candidate labels files of a split folder (CSV/TSV/text files directly in it)."""
    return sorted(p for p in folder.glob("*") if p.is_file() and p.suffix.lower() in LABEL_SUFFIXES)


def value_columns(path: Path) -> tuple[list[str], int]:
    """The header's names of the value columns (``[]`` without a header) and the values per row."""
    table, _problems = read_labels_file(path)
    counts = Counter(len(cells) for cells in table.values())
    per_row = counts.most_common(1)[0][0] if counts else 1
    first = path.read_text(errors="replace").splitlines()[:1]
    delimiter = "\t" if first and "\t" in first[0] else ","
    header = next(csv.reader(first, delimiter=delimiter), []) if first else []
    if header and header[0].strip().lower() in HEADER_NAMES:
        return [c.strip() for c in header[1 : 1 + per_row]], per_row
    return [], per_row


def summarize_scalar(root: Path, labels_file_name: str | None = None) -> ScalarSummary:
    """Find the images and labels files of a scalar-regression dataset and read them as training does."""
    layout, problems = labelled_folders(root, lambda folder, _images: labels_files(folder))
    found = sorted({p.name for _n, _d, files in layout for p in files})
    chosen = pick(found, labels_file_name)
    splits = [ScalarSplit(n, d, next((p for p in files if p.name == chosen), None)) for n, d, files in layout]
    summary = ScalarSummary(root, splits, found, chosen, [], problems=problems)
    if chosen is None:
        summary.problems.append(NO_LABELS_FILE)
        return summary
    first = next(s.labels_file for s in splits if s.labels_file is not None)
    summary.value_names, per_row = value_columns(first)
    read_labelled(
        splits, lambda s: s.labels_file, lambda s: _read_split(summary, s, per_row), chosen, summary.problems
    )
    return summary


def _read_split(summary: ScalarSummary, split: ScalarSplit, per_row: int) -> None:
    from geoft.datasets.scalar_regression import GenericNonGeoScalarRegressionDataset

    dataset = GenericNonGeoScalarRegressionDataset(
        split.image_dir, labels_file=split.labels_file, num_outputs=per_row, strict=False, name=split.name
    )
    sort_problems(dataset.problems, split.name, summary.problems, summary.warnings)
    listed, _problems = read_labels_file(split.labels_file) if split.labels_file else ({}, [])
    unknown = sorted(set(listed) - set(dataset.values))
    if unknown:
        summary.warnings.append(
            f"{split.name}: {len(unknown)} row(s) of {split.labels_file.name} name no image in "
            f"{split.image_dir.name}/ (or hold no number), e.g. {unknown[0]!r}"
        )
    split.values = [dataset.values[r.key][0] for r in dataset.samples]
    if summary.size is None and dataset.samples:
        summary.size = tuple(dataset.samples[0].header.shape)
        summary.band_names = image_band_names(dataset.samples[0].image)


def scalar_datamodule_paths(summary: ScalarSummary) -> dict[str, Any]:
    """Where-the-files arguments of ``GenericNonGeoScalarRegressionDataModule`` for this dataset."""
    splits = training_splits({s.name: s for s in summary.splits if s.labels_file is not None}, summary.root)
    args: dict[str, Any] = {"img_grep": "*.tif"}
    for name, s in splits.items():
        args[f"{name}_data_root"] = str(s.image_dir)
        args[f"{name}_labels_file"] = str(s.labels_file)
    return args
