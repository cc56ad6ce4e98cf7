"""Generic image-level regression dataset: one number (or a few) per image, from a labels file.

The labels file has ``filename,value[,value...]`` rows (comma or tab separated, an optional header row
such as ``filename,biomass``), the same layout as a classification labels file with numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from geoft.datasets.classification import ClassificationRecord, GenericNonGeoClassificationDataset
from geoft.datasets.labels_file import label_aliases, parse_values, read_labels_file
from geoft.datasets.pixelwise import warn_not_georeferenced
from geoft.datasets.problems import DataProblem, problem_from_error
from geoft.errors import ConfigError, DataError


@dataclass(eq=False, repr=False)
class GenericNonGeoScalarRegressionDataset(GenericNonGeoClassificationDataset):
    """Images with ``label`` float32: a scalar (``num_outputs`` 1) or ``[num_outputs]`` values.

    Args:
        data_root: folder of images (searched recursively with ``image_grep``).
        labels_file: CSV/text file of ``filename,value[,value...]`` rows (needed unless ``with_labels`` is False).
        num_outputs: values per image.
        others: as :class:`~geoft.datasets.classification.GenericNonGeoClassificationDataset`.
    """

    num_classes: int = 1
    num_outputs: int = field(default=1, kw_only=True)

    def __post_init__(self) -> None:
        if self.num_outputs < 1:
            raise ConfigError(f"num_outputs must be at least 1, not {self.num_outputs}.")
        if self.with_labels and self.labels_file is None:
            raise ConfigError(
                f"Dataset {self.name!r} ({self.data_root}) needs a labels_file: rows 'filename,value' give "
                "each image its target.",
                hint="set <split>_labels_file in the datamodule.",
            )
        self.values: dict[str, tuple[float, ...]] = {}
        super().__post_init__()

    def _parse(self, name: str, cells: list[str]) -> tuple[float, ...] | None:
        assert self.labels_file is not None
        source = f"Labels file {self.labels_file} ({name})"
        found = parse_values(cells, self.num_outputs, source, self.labels_file)
        if isinstance(found, DataProblem):
            self.problems.append(found)
            return None
        return found

    def _index(self) -> list[ClassificationRecord]:
        images = self._filter_split(self._images(self.data_root, self.image_grep, True))
        if self.with_labels:
            assert self.labels_file is not None
            table, problems = read_labels_file(self.labels_file)
            self.problems += problems
            aliases = label_aliases(images, self.data_root)
            for name, cells in table.items():
                key = aliases.get(name)
                values = self._parse(name, cells) if key is not None else None
                if key is not None and values is not None:
                    self.values[key] = values
            unlisted = sorted(set(images) - set(self.values) - {aliases[n] for n in table if n in aliases})
            for key in unlisted:
                self.problems.append(
                    DataProblem(
                        "missing_label",
                        f"Image {images[key]} is not listed in labels file {self.labels_file}.",
                        str(images[key]),
                    )
                )
            images = {k: p for k, p in images.items() if k in self.values}
        self.reader.adopt_band_names_from(list(images.values()))
        records = []
        for key, image in sorted(images.items()):
            try:
                header = self.reader.header(image)
            except DataError as err:
                self.problems.append(problem_from_error(err, path=str(image)))
                continue
            records.append(ClassificationRecord(key, image, None, header))
        self.problems += warn_not_georeferenced(records, f"{self.name} ({self.data_root})")
        return records

    def targets(self) -> list[tuple[float, ...] | None]:  # type: ignore[override]
        return [self.values.get(r.key) for r in self.samples]

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        values = self.values.get(self.samples[index].key)
        if values is not None:
            label = torch.tensor(values, dtype=torch.float32)
            sample["label"] = label[0] if self.num_outputs == 1 else label
        return sample


__all__ = ["GenericNonGeoScalarRegressionDataset"]
