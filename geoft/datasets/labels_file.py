"""Read a classification labels file: ``filename,label`` rows (several labels for multi-label).

Accepted layouts (comma or tab separated; an optional header row):

* ``image_001.tif,water``                   one label per row
* ``image_001.tif,2``                       class indices instead of names
* ``image_001.tif,forest,water``            several labels (multi-label), one per column
* ``image_001.tif,"forest;water"``          several labels in one cell, ``;`` or ``|`` separated
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from geoft.datasets.pairing import strip_extension
from geoft.datasets.problems import DataProblem

HEADER_NAMES = {"filename", "file", "image", "name", "path", "id", "sample", "image_id"}


def read_labels_file(path: str | Path) -> tuple[dict[str, list[str]], list[DataProblem]]:
    """Name (without raster extension) -> labels as written. Problems for unreadable rows."""
    path = Path(path)
    if not path.is_file():
        return {}, [DataProblem("missing_labels_file", f"Labels file {path} does not exist.", str(path))]
    text = path.read_text()
    if not text.strip():
        return {}, [DataProblem("empty_labels_file", f"Labels file {path} is empty.", str(path))]
    delimiter = "\t" if "\t" in text.splitlines()[0] else ","
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter) if r and any(c.strip() for c in r)]
    if rows and rows[0][0].strip().lower() in HEADER_NAMES:
        rows = rows[1:]
    out: dict[str, list[str]] = {}
    problems = []
    for line, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        name, rest = cells[0], [c for c in cells[1:] if c]
        labels = [part.strip() for cell in rest for part in cell.replace("|", ";").split(";") if part.strip()]
        if not labels:
            problems.append(
                DataProblem(
                    "labels_file_row", f"Labels file {path}, row {line} ({name!r}) has no label.", str(path)
                )
            )
            continue
        key = strip_extension(Path(name).name)
        if key in out:
            problems.append(
                DataProblem(
                    "labels_file_row", f"Labels file {path} lists {name!r} more than once.", str(path)
                )
            )
            continue
        out[key] = labels
    if not out and not problems:
        problems.append(DataProblem("empty_labels_file", f"Labels file {path} lists no labels.", str(path)))
    return out, problems


def labels_are_indices(labels: dict[str, list[str]]) -> bool:
    return all(lab.lstrip("-").isdigit() for labs in labels.values() for lab in labs)


def label_aliases(images: dict[str, Path], root: Path) -> dict[str, str]:
    """The names a labels file may use for each image (its key, file stem, path below ``root``) -> key."""
    aliases: dict[str, str] = {}
    for key, path in images.items():
        rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
        for alias in (key, strip_extension(path.name), strip_extension(rel)):
            aliases.setdefault(alias, key)
    return aliases


def parse_values(
    cells: list[str], num_outputs: int, source: str, path: Path
) -> tuple[float, ...] | DataProblem:
    """The ``num_outputs`` finite numbers of a labels-file row, or the problem with it."""
    if len(cells) != num_outputs:
        return DataProblem(
            "label_count", f"{source}: {len(cells)} values, but num_outputs is {num_outputs}.", str(path)
        )
    try:
        values = tuple(float(c) for c in cells)
    except ValueError:
        return DataProblem("label_not_a_number", f"{source}: {cells} are not all numbers.", str(path))
    if any(math.isinf(v) for v in values):
        return DataProblem("label_not_finite", f"{source}: {cells} is infinite.", str(path))
    return values


def class_index(
    label: str, class_names: list[str] | None, num_classes: int, source: str
) -> int | DataProblem:
    """The class index of a label written as an index (no ``class_names``) or a name, or the problem."""
    if class_names is None:
        index = int(label)
        if not 0 <= index < num_classes:
            return DataProblem(
                "label_out_of_range",
                f"{source}: class index {index} is outside 0..{num_classes - 1}.",
                source,
            )
        return index
    if label not in class_names:
        return DataProblem(
            "unknown_class",
            f"{source}: unknown class {label!r}; known classes: {', '.join(class_names)}.",
            source,
        )
    return class_names.index(label)
