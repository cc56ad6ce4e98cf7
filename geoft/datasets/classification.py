"""Generic (multi-label) classification dataset: labels from class sub-folders or a labels file."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchgeo.datasets import NonGeoDataset

from geoft.datasets.arguments import ReadingArguments, SourceArguments
from geoft.datasets.classes import check_class_names
from geoft.datasets.geometry import as_size, fit_to_size, target_shape
from geoft.datasets.labels_file import class_index, label_aliases, labels_are_indices, read_labels_file
from geoft.datasets.pairing import filter_by_split, find_files, keyed
from geoft.datasets.pixelwise import warn_not_georeferenced
from geoft.datasets.problems import DataProblem, checked_samples, problem_from_error
from geoft.datasets.reader import SampleHeader, default_rgb_indices
from geoft.errors import ConfigError, DataError


@dataclass(frozen=True)
class ClassificationRecord:
    key: str
    image: Path
    classes: tuple[int, ...] | None
    header: SampleHeader


@dataclass(eq=False, repr=False)
class GenericNonGeoClassificationDataset(ReadingArguments, SourceArguments, NonGeoDataset):
    """Images with one class (``label`` int64 scalar) or several (``label`` float32 multi-hot ``[K]``).

    Labels come from ``labels_file`` (rows ``filename,label[,label...]``, names or indices) or, without
    it, from class sub-folders ``data_root/<class name>/<image>``. Built, like the pixel-wise datasets,
    from a ``self.source`` (:class:`~geoft.datasets.arguments.SplitSource`) and a ``self.reader``.

    Args:
        data_root: folder of images (or of class sub-folders).
        num_classes: number of classes.
        labels_file: CSV/text file of ``filename,label`` rows.
        class_names: class names in index order; default: sorted sub-folder names / names in the file.
        multi_label: several labels per image (multi-hot targets).
        others: see :mod:`geoft.datasets.arguments` (``image_grep`` globs inside each class folder when
            using sub-folders; ``with_labels=False`` reads images only, in any folder layout).
    """

    data_root: str | Path
    num_classes: int
    _: KW_ONLY
    labels_file: str | Path | None = None
    class_names: list[str] | None = None
    multi_label: bool = False

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, not {self.num_classes}.")
        check_class_names(self.num_classes, self.class_names)
        self.reader = self.image_reader()
        self.source = self.split_source(self.data_root)
        self.data_root = self.source.data_root
        self.class_names = list(self.class_names) if self.class_names is not None else None
        self.labels_file = Path(self.labels_file) if self.labels_file is not None else None
        self.chip_size = as_size(self.chip_size)
        self.problems: list[DataProblem] = []
        what = f"Dataset {self.name!r} ({self.data_root})"
        self.samples = checked_samples(self._index, self.problems, self.strict, what)
        if self.rgb_indices is None:
            self.rgb_indices = default_rgb_indices(self.reader.selected_bands, None)

    # -- index -----------------------------------------------------------------------------------
    def _images(self, root: Path, grep: str, recursive: bool) -> dict[str, Path]:
        dirs = self.reader.band_file_pattern is not None
        files, problems = find_files(root, grep, "image", dirs=dirs, recursive=recursive)
        self.problems += problems
        images, problems = keyed(files, root, grep, "image")
        self.problems += problems
        return images

    def _filter_split(self, images: dict[str, Path]) -> dict[str, Path]:
        source = self.source
        if source.split is None or not images:
            return images
        images, problems = filter_by_split(
            images, source.split, source.ignore_split_file_extensions, source.allow_substring_split_file
        )
        self.problems += problems
        return images

    def _index(self) -> list[ClassificationRecord]:
        if not self.with_labels:
            labelled = {
                k: (p, None)
                for k, p in self._filter_split(self._images(self.data_root, self.image_grep, True)).items()
            }
        elif self.labels_file is not None:
            labelled = self._from_labels_file()
        else:
            labelled = self._from_folders()
        self.reader.adopt_band_names_from([p for p, _ in labelled.values()])
        records = []
        for key, (image, classes) in sorted(labelled.items()):
            try:
                header = self.reader.header(image)
            except DataError as err:
                self.problems.append(problem_from_error(err, path=str(image)))
                continue
            records.append(ClassificationRecord(key, image, classes, header))
        self.problems += warn_not_georeferenced(records, f"{self.name} ({self.data_root})")
        return records

    def _class_index(self, label: str, source: str) -> int | None:
        found = class_index(label, self.class_names, self.num_classes, source)
        if isinstance(found, DataProblem):
            self.problems.append(found)
            return None
        return found

    def _resolve_names(self, found: list[str], source: str) -> None:
        if self.class_names is not None:
            return
        if len(found) != self.num_classes:
            raise ConfigError(
                f"{source} has {len(found)} classes ({', '.join(found[:10])}) but num_classes is {self.num_classes}.",
                hint="fix num_classes, or give class_names (all classes, in index order).",
            )
        self.class_names = found

    def _from_labels_file(self) -> dict[str, tuple[Path, tuple[int, ...] | None]]:
        assert self.labels_file is not None
        table, problems = read_labels_file(self.labels_file)
        self.problems += problems
        if not table:
            return {}
        if not labels_are_indices(table):
            self._resolve_names(
                sorted({lab for labs in table.values() for lab in labs}), f"Labels file {self.labels_file}"
            )
        elif self.class_names is not None:
            table = {
                k: [self.class_names[int(v)] if 0 <= int(v) < self.num_classes else v for v in labs]
                for k, labs in table.items()
            }
        images = self._filter_split(self._images(self.data_root, self.image_grep, True))
        aliases = label_aliases(images, self.data_root)
        out: dict[str, tuple[Path, tuple[int, ...] | None]] = {}
        for name, labels in table.items():
            key = aliases.get(name)
            if key is None:
                continue
            if len(labels) > 1 and not self.multi_label:
                self.problems.append(
                    DataProblem(
                        "several_labels",
                        f"Labels file {self.labels_file} gives {images[key].name} {len(labels)} labels "
                        f"({', '.join(labels)}); set multi_label: true for several labels per image.",
                        str(self.labels_file),
                    )
                )
                continue
            classes = [self._class_index(lab, f"Labels file {self.labels_file} ({name})") for lab in labels]
            if any(c is None for c in classes):
                continue
            out[key] = (images[key], tuple(sorted(set(classes))))  # type: ignore[arg-type]
        for key in sorted(set(images) - set(out)):
            if not any(aliases.get(n) == key for n in table):
                self.problems.append(
                    DataProblem(
                        "missing_label",
                        f"Image {images[key]} is not listed in labels file {self.labels_file}.",
                        str(images[key]),
                    )
                )
        unused = [n for n in table if n not in aliases]
        if unused:
            self.problems.append(
                DataProblem(
                    "extra_label",
                    f"Labels file {self.labels_file} lists {len(unused)} names with no image under {self.data_root} "
                    f"(e.g. {unused[0]!r}); fine if the file is shared between splits.",
                    str(self.labels_file),
                    severity="warning",
                )
            )
        return out

    def _from_folders(self) -> dict[str, tuple[Path, tuple[int, ...] | None]]:
        if self.multi_label:
            raise ConfigError(
                "multi_label needs a labels_file: class sub-folders give one label per image.",
                hint="write a CSV with rows 'filename,label1;label2'.",
            )
        if not self.data_root.is_dir():
            self.problems.append(
                DataProblem(
                    "missing_folder",
                    f"The image folder {self.data_root} does not exist.",
                    str(self.data_root),
                )
            )
            return {}
        folders = sorted(
            p.name for p in self.data_root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if not folders:
            what = "is empty" if not any(self.data_root.iterdir()) else "has no class sub-folders"
            self.problems.append(
                DataProblem(
                    "empty_folder" if what == "is empty" else "no_class_folders",
                    f"The image folder {self.data_root} {what}; classification needs class sub-folders or a labels_file.",
                    str(self.data_root),
                )
            )
            return {}
        if self.reader.band_file_pattern is not None and self.class_names is None:
            raise ConfigError("with band_file_pattern and class sub-folders, give class_names explicitly.")
        self._resolve_names(folders, f"Image folder {self.data_root}")
        out: dict[str, tuple[Path, tuple[int, ...] | None]] = {}
        for folder in folders:
            index = self._class_index(folder, f"Class folder {self.data_root / folder}")
            if index is None:
                continue
            images = self._images(self.data_root / folder, self.image_grep, False)
            for key, path in images.items():
                out[f"{folder}/{key}"] = (path, (index,))
        kept = self._filter_split({k: v[0] for k, v in out.items()})
        return {k: out[k] for k in kept}

    # -- reading ---------------------------------------------------------------------------------
    def shapes(self) -> dict[tuple[int, int], list[str]]:
        out: dict[tuple[int, int], list[str]] = {}
        for r in self.samples:
            shape = target_shape(r.header.shape, self.chip_size, self.pad_to_multiple)
            out.setdefault(shape, []).append(str(r.image))
        return out

    @property
    def filenames(self) -> list[str]:
        return [str(r.image) for r in self.samples]

    def targets(self) -> list[tuple[int, ...] | None]:
        return [r.classes for r in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.samples[index]
        image, header = self.reader.read(record.image)
        fill = self.reader.no_data_replace if self.reader.no_data_replace is not None else 0.0
        (image,), transform = fit_to_size(
            [(image, fill)], header.transform, self.chip_size, self.pad_to_multiple
        )
        sample: dict[str, Any] = {"image": torch.from_numpy(image)}
        if record.classes is not None:
            if self.multi_label:
                hot = np.zeros(self.num_classes, dtype=np.float32)
                hot[list(record.classes)] = 1.0
                sample["label"] = torch.from_numpy(hot)
            else:
                sample["label"] = torch.tensor(record.classes[0], dtype=torch.int64)
        sample["filename"] = str(record.image)
        sample["crs"] = header.crs
        sample["transform"] = transform
        return sample
