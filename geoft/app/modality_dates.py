"""Dates of a modality's files: several files per sample that differ by a date in the name (a ``time_grep``
is proposed, the one :class:`geoft.datasets.dates.TimeGrep` reads), or one file per sample with a date tag.

The proposed pattern is checked by compiling it and grouping the files with
:func:`geoft.datasets.dates.group_by_date`, the code training runs, so what the Data page shows is what
training will stack.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from geoft.datasets.dates import TimeGrep, group_by_date, tag_date
from geoft.datasets.pairing import strip_extension
from geoft.datasets.problems import FileDataError
from geoft.errors import ConfigError

# a date in a file name, the longest form first: 2020-05-01 / 2020_05_01, 20200501, 2020122 (day of year)
_DATE_FORMS = (
    (re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"), "%Y-%m-%d"),
    (re.compile(r"(?<!\d)(\d{4})_(\d{2})_(\d{2})(?!\d)"), "%Y_%m_%d"),
    (re.compile(r"(?<!\d)(\d{8})(?!\d)"), "%Y%m%d"),
    (re.compile(r"(?<!\d)(\d{7})(?!\d)"), "%Y%j"),
)
_SEPARATORS = "_-."


@dataclass(frozen=True)
class NameDate:
    """Where a date sits in a file name: ``name[start:end]`` parses with ``fmt``."""

    start: int
    end: int
    fmt: str
    date: datetime


def date_in_name(name: str) -> NameDate | None:
    """The last plausible date (years 1970-2100) in a file name, in the forms of :data:`_DATE_FORMS`."""
    for regex, fmt in _DATE_FORMS:
        for match in reversed(list(regex.finditer(name))):
            try:
                date = datetime.strptime(match.group(0), fmt)
            except ValueError:
                continue
            if 1970 <= date.year <= 2100:
                return NameDate(match.start(), match.end(), fmt, date)
    return None


def undated_stem(name: str, found: NameDate) -> str:
    """``field_12_S2`` of ``field_12_S2_20200105.tif`` and of ``field_12_20200105_S2.tif``."""
    return strip_extension(name[: found.start].rstrip(_SEPARATORS) + name[found.end :])


@dataclass
class DatedFiles:
    """The dates of one modality: the pattern, each sample's dates in order, and what is wrong."""

    time_grep: str | None = None  # None: single-date files
    source: str = "none"  # "names", "tags" or "none"
    dates: dict[str, list[datetime]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter[int]:
        return Counter(len(d) for d in self.dates.values())

    @property
    def date_count(self) -> int:
        """The usual number of dates per sample (0: no dates)."""
        return self.counts.most_common(1)[0][0] if self.dates else 0

    def odd_samples(self) -> dict[str, int]:
        """Samples whose number of dates differs from the usual one (training refuses them)."""
        usual = self.date_count
        return {k: len(d) for k, d in sorted(self.dates.items()) if len(d) != usual}


def propose_time_grep(files: list[Path], key_of_stem: dict[str, str]) -> str | None:
    """A ``time_grep`` template for files holding a date in their names, or None when some do not.

    ``key_of_stem`` maps an undated stem (``field_12_S2``) to its sample key (``field_12``).
    """
    templates = set()
    for path in files:
        found = date_in_name(path.name)
        if found is None:
            return None
        key = key_of_stem.get(undated_stem(path.name, found))
        if key is None or not path.name.startswith(key) or len(key) > found.start:
            return None
        date_field = "{date:" + found.fmt + "}"
        templates.add("{sample}" + path.name[len(key) : found.start] + date_field + path.name[found.end :])
    return templates.pop() if len(templates) == 1 else None


_DIGITS = {"Y": 4, "m": 2, "d": 2, "j": 3}


def glob_of(time_grep: str) -> str:
    """The image pattern of a ``time_grep`` template: ``{sample}`` any text, the date its digits
    (``{sample}_{date:%Y%m%d}.tif`` is ``*_[0-9]...[0-9].tif``, so ``NAME_mask.tif`` beside it is no image)."""

    def date_glob(fmt: str) -> str:
        out = re.sub(r"%([Ymdj])", lambda m: "[0-9]" * _DIGITS[m.group(1)], fmt)
        return "*" if "%" in out else out

    out = time_grep.replace("{sample}", "*")
    return re.sub(r"\{date(?::([^}]*))?\}", lambda m: date_glob(m.group(1) or "%Y%m%d"), out)


def read_dates(files: list[Path], time_grep: str | None, read_tags: bool = True) -> DatedFiles:
    """Group ``files`` by sample with ``time_grep`` (as training does), else read each file's date tag."""
    if time_grep:
        try:
            compiled = TimeGrep.compile(time_grep)
        except ConfigError as err:
            return DatedFiles(time_grep, "names", problems=[str(err)])
        series, problems = group_by_date({p: "image" for p in files}, compiled)
        out = DatedFiles(time_grep, "names", {k: list(s.dates) for k, s in series.items()})
        out.problems = [p.message for p in problems]
        odd = out.odd_samples()
        if odd:
            named = ", ".join(f"{k} ({n})" for k, n in list(odd.items())[:5])
            out.problems.append(
                f"{len(odd)} sample(s) have another number of dates than the usual {out.date_count}: {named}; "
                "training stacks the same number of dates per sample"
            )
        return out
    if not read_tags:
        return DatedFiles()
    tagged: dict[str, list[datetime]] = {}
    for path in files:
        try:
            tagged[path.name] = [tag_date(path)]
        except (FileDataError, OSError, ValueError):
            return DatedFiles()  # one file without a tag: the modality is read without dates
    return DatedFiles(None, "tags", tagged)


def group_dated(files: list[Path]) -> dict[str, list[Path]] | None:
    """Files by undated stem when several share one (the dates of a sample), else None."""
    stems: dict[str, list[Path]] = {}
    for path in files:
        found = date_in_name(path.name)
        if found is None:
            return None
        stems.setdefault(undated_stem(path.name, found), []).append(path)
    return stems if any(len(v) > 1 for v in stems.values()) else None
