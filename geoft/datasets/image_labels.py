"""Image-level targets (a class, or numbers) of multi-file samples from one labels file.

The rows name a sample by its key or by one of its files (as the single-modal labels files do); the
values are read with the helpers of :mod:`geoft.datasets.labels_file`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from geoft.datasets.labels_file import (
    class_index,
    label_aliases,
    labels_are_indices,
    parse_values,
    read_labels_file,
)
from geoft.datasets.problems import DataProblem
from geoft.errors import ConfigError


class ImageLabels:
    """``sample -> target`` for ``classification`` (one class) or ``scalar_regression`` (numbers)."""

    def __init__(
        self,
        path: Path,
        task: str,
        num_classes: int | None,
        class_names: list[str] | None,
        num_outputs: int = 1,
    ) -> None:
        if path.is_dir():
            raise ConfigError(
                f"task {task!r} takes its labels from a file of 'sample,label' rows, but the label root "
                f"{path} is a folder.",
                hint="set <split>_label_data_root to the labels file (CSV or text).",
            )
        if task == "classification" and num_classes is None:
            raise ConfigError("task 'classification' needs num_classes.")
        self.path = path
        self.task = task
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names is not None else None
        self.num_outputs = num_outputs
        self.targets: dict[str, tuple[float, ...]] = {}
        self.indices = True  # labels written as class indices (else as class names)

    def select(
        self, by_source: dict[str, dict[str, Path]], roots: dict[str, str | Path], problems: list[DataProblem]
    ) -> dict[str, dict[str, Path]]:
        """Read the file; keep the samples it labels (of every source), report those it does not."""
        table, found = read_labels_file(self.path)
        problems += found
        self.indices = labels_are_indices(table)
        if table and self.task == "classification" and not self.indices:
            self._name_classes(sorted({lab for labs in table.values() for lab in labs}))
        aliases: dict[str, str] = {}
        for source, files in by_source.items():
            for alias, key in label_aliases(files, Path(roots[source])).items():
                aliases.setdefault(alias, key)
        for name, cells in table.items():
            key = aliases.get(name)
            if key is None:
                continue
            target = self._target(cells, f"Labels file {self.path} ({name})")
            if isinstance(target, DataProblem):
                problems.append(target)
            else:
                self.targets[key] = target
        listed = {aliases[n] for n in table if n in aliases}
        for key in sorted(set().union(*by_source.values()) - listed):
            file = next(files[key] for files in by_source.values() if key in files)
            problems.append(
                DataProblem(
                    "missing_label",
                    f"Sample {key!r} ({file}) is not listed in labels file {self.path}.",
                    str(file),
                )
            )
        return {s: {k: p for k, p in files.items() if k in self.targets} for s, files in by_source.items()}

    def _name_classes(self, names: list[str]) -> None:
        if self.class_names is not None:
            return
        if len(names) != self.num_classes:
            raise ConfigError(
                f"Labels file {self.path} has {len(names)} classes ({', '.join(names[:10])}) but num_classes "
                f"is {self.num_classes}.",
                hint="fix num_classes, or give class_names (all classes, in index order).",
            )
        self.class_names = names

    def _target(self, cells: list[str], source: str) -> tuple[float, ...] | DataProblem:
        if self.task == "scalar_regression":
            return parse_values(cells, self.num_outputs, source, self.path)
        if len(cells) != 1:
            return DataProblem(
                "several_labels", f"{source}: {len(cells)} labels; one is needed.", str(self.path)
            )
        assert self.num_classes is not None
        names = None if self.indices else self.class_names
        index = class_index(cells[0], names, self.num_classes, source)
        return index if isinstance(index, DataProblem) else (float(index),)

    def tensor(self, target: tuple[float, ...]) -> torch.Tensor:
        """The batch ``label``: int64 class, float32 value, or ``[num_outputs]`` float32 values."""
        if self.task == "classification":
            return torch.tensor(int(target[0]), dtype=torch.int64)
        values = torch.tensor(target, dtype=torch.float32)
        return values[0] if self.num_outputs == 1 else values
