"""The Data page's "Check every file": the full data check of ``geoft fit`` on the chosen folder.

Every image and label of every split is read in full, as training's start reads them
(:mod:`geoft.datasets.data_check`), and the training statistics come from the same read. The result
is one line per problem (split, file, problem), or "all N files OK"; errors never escape as tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoft.app.data_summary import DatasetSummary, datamodule_paths
from geoft.datasets.problems import DataProblem
from geoft.errors import GeoftError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ProblemLine:
    """One problem the check found, as the page lists it."""

    split: str
    file: str
    problem: str
    severity: str = "error"


@dataclass
class FileCheckResult:
    """What "Check every file" found: files read, problems, and the training statistics (when clean)."""

    files: int = 0
    lines: list[ProblemLine] = field(default_factory=list)
    statistics: dict[str, list[float]] | None = None

    @property
    def errors(self) -> list[ProblemLine]:
        return [line for line in self.lines if line.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def headline(self) -> str:
        if not self.lines:
            return f"all {self.files} files OK"
        errors, warnings = len(self.errors), len(self.lines) - len(self.errors)
        found = f"{errors} problem{'s' * (errors != 1)}" if errors else "no errors"
        return f"{self.files} files read: {found}" + (
            f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
        )


def _line(problem: DataProblem, root: Path) -> ProblemLine:
    file = problem.path or ""
    if file:
        try:
            file = str(Path(file).resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return ProblemLine(problem.split or "", file, problem.message, problem.severity)


def _datamodule(summary: DatasetSummary, num_classes: int, ignore_index: int | None) -> Any:
    from geoft.datamodules import GenericNonGeoSegmentationDataModule

    return GenericNonGeoSegmentationDataModule(
        num_classes=max(2, num_classes), ignore_index=ignore_index, **datamodule_paths(summary)
    )


def check_every_file(
    summary: DatasetSummary, num_classes: int, ignore_index: int | None = None
) -> FileCheckResult:
    """Read every file of the dataset folder in full; the training statistics come from the same read.

    ``num_classes`` and ``ignore_index`` are those the page shows (label values outside the classes,
    other than the ignore value, are problems), as the Model page will pass them to training.
    """
    from geoft.datasets.data_check import check_dataset_files, check_with_statistics

    result = FileCheckResult()
    try:
        dm = _datamodule(summary, num_classes, ignore_index)
        for split in SPLITS:
            if dm.data_root(split) is None:
                continue
            dataset = dm.build_dataset(split, strict=False)
            result.lines += [_line(p.with_split(split), summary.root) for p in dataset.problems]
            result.files += sum(1 + (s.label is not None) for s in dataset.samples)
            if not dataset.samples:
                continue
            if split == "train":
                problems, measured = check_with_statistics(dataset, split, dm.stats_cache_dir)
                if measured is not None:
                    stats = measured[0]
                    result.statistics = {
                        "means": [round(float(m), 6) for m in stats.means],
                        "stds": [round(float(s), 6) for s in stats.stds],
                    }
            else:
                problems = check_dataset_files(dataset, split, dm.stats_cache_dir)[0]
            result.lines += [_line(p, summary.root) for p in problems]
    except GeoftError as err:
        text = err.message if err.hint is None else f"{err.message} ({err.hint})"
        result.lines.append(ProblemLine("", "", text))
        result.statistics = None
    if result.errors:
        result.statistics = None
    result.lines.sort(
        key=lambda line: (
            line.severity != "error",
            SPLITS.index(line.split) if line.split in SPLITS else -1,
            line.file,
        )
    )
    return result
