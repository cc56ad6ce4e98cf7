"""A problem found in a dataset on disk, and how a list of them becomes one :class:`DataError`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, TypeVar

from geoft.errors import DataError

T = TypeVar("T")

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class DataProblem:
    """One thing wrong with a dataset.

    Attributes:
        code: a stable short identifier (``"missing_label"``, ``"corrupt_file"``...), for programs.
        message: what is wrong and what to do, for people.
        path: the file or folder concerned, if any.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"predict"`` when known.
        severity: ``"error"`` (the dataset cannot be used as is) or ``"warning"``.
    """

    code: str
    message: str
    path: str | None = None
    split: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"[{self.split}] " if self.split else ""
        return f"{self.severity.upper()} {where}{self.code}: {self.message}"

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def with_split(self, split: str | None) -> DataProblem:
        return DataProblem(self.code, self.message, self.path, split, self.severity)


def raise_if_errors(problems: list[DataProblem], context: str, limit: int = 15) -> None:
    """Raise one :class:`DataError` listing every error-level problem (at most ``limit`` shown)."""
    errors = [p for p in problems if p.severity == "error"]
    if not errors:
        return
    lines = [f"- {p.message}" for p in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"- ... and {len(errors) - limit} more")
    noun = "problem" if len(errors) == 1 else "problems"
    raise DataError(
        f"{context}: {len(errors)} {noun}:\n" + "\n".join(lines),
        hint="run `geoft validate-data -c CONFIG` to list every problem of the whole dataset at once.",
    )


class FileDataError(DataError):
    """A :class:`DataError` about one file, with the problem code used by dataset validation."""

    def __init__(self, code: str, message: str, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.path = path

    def problem(self, split: str | None = None) -> DataProblem:
        text = self.message if self.hint is None else f"{self.message} ({self.hint})"
        return DataProblem(self.code, text, self.path, split)


def problem_from_error(err: DataError, split: str | None = None, path: str | None = None) -> DataProblem:
    """Turn a raised :class:`DataError` into a :class:`DataProblem`."""
    if isinstance(err, FileDataError):
        return err.problem(split)
    text = err.message if err.hint is None else f"{err.message} ({err.hint})"
    return DataProblem("data_error", text, path, split)


def checked_samples(
    index: Callable[[], list[T]], problems: list[DataProblem], strict: bool, what: str
) -> list[T]:
    """Run ``index`` (which appends to ``problems``); strict datasets then raise one :class:`DataError`
    for every problem found, or for having no samples."""
    samples = index()
    if strict:
        raise_if_errors(problems, what)
        if not samples:
            raise DataError(f"{what} has no samples.")
    return samples
