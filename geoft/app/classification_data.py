"""What the Data page shows about a classification dataset: where each split's labels come from (class
sub-folders or a labels file), the classes and the images per class, and the images or rows that do
not pair.

Layouts: split folders (``train/``, ``val/``, ``test/``) or one folder, each either with one sub-folder
per class (``train/forest/chip_001.tif``) or with an image folder and a labels file beside it
(``filename,label`` rows; several labels per row for multi-label classification). The reading is
:class:`geoft.datasets.classification.GenericNonGeoClassificationDataset`'s, the one training uses, in
its non-strict mode.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoft.app.data_summary import image_band_names
from geoft.app.dataset_layout import (
    image_folder,
    pick,
    rasters_in,
    sort_problems,
    split_folders,
    training_splits,
)
from geoft.app.scalar_data import labels_files
from geoft.datasets.labels_file import read_labels_file
from geoft.errors import DataError


@dataclass
class ClassSplit:
    name: str
    folder: Path  # the split folder: class sub-folders, or the image folder's parent
    image_dir: Path | None  # None: class sub-folders
    labels_file: Path | None
    images: int = 0
    class_counts: Counter[int] = field(default_factory=Counter)


@dataclass
class ClassificationSummary:
    """Everything the Data page displays for one class (or several) per image."""

    root: Path
    multi_label: bool
    splits: list[ClassSplit]
    labels_files_found: list[str]
    labels_file_name: str | None
    class_names: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    size: tuple[int, int] | None = None
    band_names: list[str] = field(default_factory=list)

    @property
    def image_count(self) -> int:
        return sum(s.images for s in self.splits)

    @property
    def class_counts(self) -> dict[str, int]:
        """Images per class over every split (an image counts once for each of its classes)."""
        total = sum((s.class_counts for s in self.splits), Counter())
        return {name: total[i] for i, name in enumerate(self.class_names)}

    @property
    def split_sizes(self) -> dict[str, int]:
        return {s.name: s.images for s in self.splits}


def _class_folders(folder: Path) -> list[Path]:
    return sorted(c for c in folder.iterdir() if c.is_dir() and rasters_in(c, recursive=False))


def _layout(root: Path, labels_file_name: str | None) -> tuple[list[ClassSplit], list[str], str | None]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder", hint="choose a dataset folder")
    folders = split_folders(root) or [("all", root)]
    found = sorted({p.name for _n, f in folders for p in labels_files(f)})
    chosen = pick(found, labels_file_name)
    splits = []
    for name, folder in folders:
        labels = folder / chosen if chosen and (folder / chosen).is_file() else None
        splits.append(ClassSplit(name, folder, image_folder(folder) if labels else None, labels))
    return splits, found, chosen


def _found_names(split: ClassSplit, multi_label: bool) -> list[str]:
    """The class names of a split as training resolves them: sorted folder names or file labels."""
    if split.labels_file is None:
        return [c.name for c in _class_folders(split.folder)]
    table, _problems = read_labels_file(split.labels_file)
    labels = {label for cells in table.values() for label in (cells if multi_label else cells[:1])}
    if labels and all(label.isdigit() for label in labels):
        return [str(i) for i in range(max(int(label) for label in labels) + 1)]
    return sorted(labels)


def summarize_classification(
    root: Path, labels_file_name: str | None = None, multi_label: bool = False
) -> ClassificationSummary:
    """Find the classes and images of a classification dataset and read them as training does."""
    splits, found, chosen = _layout(root, labels_file_name)
    summary = ClassificationSummary(Path(root), multi_label, splits, found, chosen)
    train = next((s for s in splits if s.name in ("train", "all")), None)
    if train is None:
        summary.problems.append("no train/ folder: training needs a training split")
        return summary
    if multi_label and train.labels_file is None:
        summary.problems.append(
            "no labels file found: several classes per image need a CSV of 'filename,class,class...' "
            "rows next to the image folder (e.g. train/labels.csv beside train/images/)"
        )
        return summary
    summary.class_names = _found_names(train, multi_label)
    if not summary.class_names:
        summary.problems.append(
            "no classes found: put the images in one sub-folder per class (train/forest/...) or a "
            "'filename,class' labels file next to the image folder"
        )
        return summary
    for split in splits:
        _read_split(summary, split)
    return summary


def _read_split(summary: ClassificationSummary, split: ClassSplit) -> None:
    from geoft.datasets.classification import GenericNonGeoClassificationDataset

    if split.labels_file is not None and split.image_dir is None:
        summary.problems.append(f"{split.name}: no image folder beside {split.labels_file.name}")
        return
    dataset = GenericNonGeoClassificationDataset(
        split.image_dir or split.folder,
        len(summary.class_names),
        labels_file=split.labels_file,
        class_names=summary.class_names,
        multi_label=summary.multi_label,
        strict=False,
        name=split.name,
    )
    sort_problems(dataset.problems, split.name, summary.problems, summary.warnings)
    split.images = len(dataset.samples)
    for record in dataset.samples:
        split.class_counts.update(record.classes or ())
    if summary.size is None and dataset.samples:
        summary.size = tuple(dataset.samples[0].header.shape)
        summary.band_names = image_band_names(dataset.samples[0].image)


def classification_datamodule_paths(summary: ClassificationSummary) -> dict[str, Any]:
    """Where-the-files arguments of ``GenericNonGeoClassificationDataModule`` for this dataset."""
    splits = training_splits({s.name: s for s in summary.splits if s.images}, summary.root)
    args: dict[str, Any] = {"img_grep": "*.tif"}
    for name, s in splits.items():
        args[f"{name}_data_root"] = str(s.image_dir or s.folder)
        if s.labels_file is not None:
            args[f"{name}_labels_file"] = str(s.labels_file)
    return args
