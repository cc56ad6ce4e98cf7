"""Check a whole dataset and report EVERY problem at once (for ``geoft validate-data`` and the app).

:func:`validate_dataset` takes a datamodule, its config (``{class_path, init_args}``, a LightningCLI
config with a ``data`` section, or a YAML file of either) and returns a list of
:class:`~geoft.datasets.problems.DataProblem`; an empty list means the data is usable.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from geoft.datasets.problems import DataProblem, problem_from_error
from geoft.errors import ConfigError, DataError, GeoftError

SPLITS = ("train", "val", "test", "predict")


def datamodule_from_config(config: dict[str, Any] | str | Path) -> Any:
    """Build a geoft datamodule from ``{class_path, init_args}``, ``{data: {...}}`` or a YAML file."""
    from lightning.pytorch import LightningDataModule

    from geoft.config import instantiate, load_config
    from geoft.config.checks import section_class

    if isinstance(config, (str, Path)):
        if not Path(config).is_file():
            raise DataError(f"Config file {config} does not exist.")
        try:
            config = load_config(config)
        except ConfigError as err:
            raise DataError(err.message, hint=err.hint) from err
    if not isinstance(config, dict):
        raise DataError("The config must be a mapping with class_path/init_args or a 'data' section.")
    section = config.get("data", config)
    if not isinstance(section, dict) or "class_path" not in section:
        raise DataError(
            "The config has no datamodule: expected 'data: {class_path: ..., init_args: {...}}'.",
            hint="e.g. class_path: geoft.datamodules.GenericNonGeoSegmentationDataModule",
        )
    from geoft.config.compat import translate

    section = translate(section, lambda _message: None, top_level=False)
    cls = section_class(section, "data")
    if not (isinstance(cls, type) and hasattr(cls, "build_dataset")):
        raise DataError(
            f"{section['class_path']} is not a geoft datamodule.", hint="use a class from geoft.datamodules."
        )
    return instantiate(section, LightningDataModule, "data")


def check_sample(
    dataset: Any, index: int, split: str, counts: dict[int, int] | None = None
) -> list[DataProblem]:
    """Problems of one sample, read in full (every pixel block of image and label); label value counts
    are added to ``counts`` when given. Thread-safe: the full data check runs it in a pool."""
    record = dataset.samples[index]
    problems = []
    try:
        image, nodata, _ = dataset.reader.read_masked(record.image)
        n_nan = int(np.isnan(image).sum())
        if n_nan and dataset.reader.no_data_replace is not None and not nodata.all():
            problems.append(
                DataProblem(
                    "nan_values",
                    f"{record.image}: {n_nan} NaN values (filled with no_data_replace="
                    f"{dataset.reader.no_data_replace}).",
                    str(record.image),
                    split,
                    "warning",
                )
            )
        sample = dataset[index]
    except DataError as err:
        return problems + [problem_from_error(err, split, str(record.image))]
    except OSError as err:  # a file vanished or became unreadable between indexing and reading
        return problems + [DataProblem("corrupt_file", f"{record.image}: {err}", str(record.image), split)]
    if counts is not None and hasattr(dataset, "reduce_zero_label") and "mask" in sample:
        mask = sample["mask"].numpy()
        values, n = np.unique(mask[mask >= 0], return_counts=True)
        for v, c in zip(values.tolist(), n.tolist()):
            counts[v] = counts.get(v, 0) + c
    return problems


def _check_pixels(dataset: Any, split: str, counts: dict[int, int]) -> list[DataProblem]:
    problems = []
    for index in range(len(dataset.samples)):
        problems += check_sample(dataset, index, split, counts)
    return problems


def _validate_split(dm: Any, split: str, read_pixels: bool) -> list[DataProblem]:
    try:
        dataset = dm.build_dataset(split, strict=False)
    except GeoftError as err:
        return [
            DataProblem(
                "config", err.message if err.hint is None else f"{err.message} ({err.hint})", None, split
            )
        ]
    problems = [p.with_split(split) for p in dataset.problems]
    if not dataset.samples:
        if not any(p.severity == "error" for p in problems):
            problems.append(DataProblem("no_samples", f"The {split} split has no samples.", None, split))
        return problems
    try:
        dm.check_sizes(dataset, dm.batch_size, split)
    except DataError as err:
        problems.append(DataProblem("mixed_sizes", f"{err.message} ({err.hint})", None, split))
    if read_pixels:
        counts: dict[int, int] = {}
        problems += _check_pixels(dataset, split, counts)
        num_classes = getattr(dataset, "num_classes", None)
        if split == "train" and counts and num_classes is not None and hasattr(dataset, "reduce_zero_label"):
            names = dataset.class_names or [str(i) for i in range(num_classes)]
            absent = [names[i] for i in range(num_classes) if counts.get(i, 0) == 0]
            if absent:
                problems.append(
                    DataProblem(
                        "class_absent",
                        f"Classes {absent} never occur in the training labels; the model cannot learn them.",
                        None,
                        split,
                        "warning",
                    )
                )
    return problems


def validate_dataset(
    source: Any, splits: Iterable[str] | None = None, read_pixels: bool = True
) -> list[DataProblem]:
    """Every problem of every configured split: files, pairing, headers and (``read_pixels``) pixels.

    Args:
        source: a geoft datamodule, a config dict, or the path of a YAML config.
        splits: splits to check (default: all configured).
        read_pixels: also read every image and label (nodata, NaN, label range, corrupt pixel data).
    """
    try:
        dm = source if hasattr(source, "build_dataset") else datamodule_from_config(source)
    except GeoftError as err:
        return [DataProblem("config", err.message if err.hint is None else f"{err.message} ({err.hint})")]
    wanted = list(splits) if splits is not None else [s for s in SPLITS if dm.data_root(s) is not None]
    problems: list[DataProblem] = []
    for split in wanted:
        problems += _validate_split(dm, split, read_pixels)
    return problems


def format_problems(problems: list[DataProblem]) -> str:
    """A readable report (one line per problem, errors first)."""
    if not problems:
        return "No problems found."
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    n_err = sum(p.severity == "error" for p in problems)
    head = f"{n_err} errors, {len(problems) - n_err} warnings"
    return head + "\n" + "\n".join(str(p) for p in ordered)
