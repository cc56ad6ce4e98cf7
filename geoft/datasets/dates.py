"""Acquisition dates of samples: from file names (``time_grep``), raster tags or a dates file; and the
``temporal_coords`` / ``location_coords`` the Prithvi ``_tl`` models (and TemporalWrapper) take.

``time_grep`` says which part of a file name is the sample key and which is the date, as a template
``"{sample}_{date:%Y%m%d}.tif"`` (``*`` and ``?`` match anything not part of either), or as a regular
expression with the named groups ``sample`` and ``date``. The files of one sample are its dates, ordered
by date, never by file order. Without a ``date`` field the dates come from each file's tags.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from geoft.datasets.labels_file import read_labels_file
from geoft.datasets.problems import DataProblem, FileDataError
from geoft.datasets.raster import read_tags
from geoft.errors import ConfigError

# tags that hold the acquisition time, most specific first (GDAL names the TIFF tag TIFFTAG_DATETIME)
DATE_TAGS = ("ACQUISITIONDATETIME", "ACQUISITION_DATE", "DATE_ACQUIRED", "SENSING_TIME", "TIFFTAG_DATETIME")
_DIRECTIVES = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{1,2}", "d": r"\d{1,2}", "j": r"\d{1,3}"}
_DIRECTIVES.update({k: r"\d{1,2}" for k in "HMS"})
_DIRECTIVES.update({"b": "[A-Za-z]{3}", "B": "[A-Za-z]+"})
_FIELD = re.compile(r"\{(sample|date)(?::([^}]*))?\}")


def parse_date_text(text: str, fmt: str | None = None) -> datetime | None:
    """A date from ``text``: with ``fmt`` (strftime codes), else ISO (``2020-05-01``, ``20200501``,
    with or without time), TIFF's ``2020:05:01 10:30:00`` or year + day of year ``2020122``."""
    text = text.strip()
    formats = [fmt] if fmt else ["%Y:%m:%d %H:%M:%S", "%Y%j"]
    if not fmt:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            pass
    for f in formats:
        if f == "%Y%j" and len(text) != 7:
            continue
        try:
            return datetime.strptime(text, f)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class TimeGrep:
    """A compiled ``time_grep``: finds the sample key and the date text in a file name."""

    pattern: str
    regex: re.Pattern[str]
    date_format: str | None
    has_date: bool

    @classmethod
    def compile(cls, pattern: str) -> TimeGrep:
        if "(?P<" in pattern:
            try:
                regex = re.compile(pattern)
            except re.error as err:
                raise ConfigError(f"time_grep {pattern!r} is not a valid regular expression: {err}.") from err
            groups = set(regex.groupindex)
            if "sample" not in groups:
                raise ConfigError(f"time_grep {pattern!r} needs a named group (?P<sample>...).")
            return cls(pattern, regex, None, "date" in groups)
        out, date_format, seen, pos = [], None, set(), 0
        for match in _FIELD.finditer(pattern):
            out.append(_glob_part(pattern[pos : match.start()]))
            name, fmt = match.group(1), match.group(2)
            if name in seen:
                raise ConfigError(f"time_grep {pattern!r} names {{{name}}} twice.")
            seen.add(name)
            if name == "sample":
                out.append(r"(?P<sample>.+?)")
            else:
                date_format = fmt or "%Y%m%d"
                out.append(f"(?P<date>{_date_regex(date_format, pattern)})")
            pos = match.end()
        out.append(_glob_part(pattern[pos:]))
        if "sample" not in seen:
            raise ConfigError(
                f"time_grep {pattern!r} needs {{sample}}: the part of the file name that names the sample.",
                hint="e.g. '{sample}_{date:%Y%m%d}.tif'.",
            )
        return cls(pattern, re.compile("".join(out)), date_format, "date" in seen)

    def key_and_date(self, path: Path) -> tuple[str, datetime | None]:
        """The sample key and the date (None when the pattern holds no date) of ``path``."""
        match = self.regex.fullmatch(path.name)
        if match is None:
            raise FileDataError(
                "date_pattern",
                f"File {path} does not match time_grep {self.pattern!r}.",
                str(path),
                hint="every image file needs the sample name and the date where time_grep says.",
            )
        if not self.has_date:
            return match.group("sample"), None
        text = match.group("date")
        date = parse_date_text(text, self.date_format)
        if date is None:
            raise FileDataError(
                "date_parse",
                f"File {path}: {text!r} is not a date of the form {self.date_format or 'ISO 8601'} "
                f"(time_grep {self.pattern!r}).",
                str(path),
            )
        return match.group("sample"), date


def _glob_part(text: str) -> str:
    return "".join("[^/]*?" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in text)


def _date_regex(fmt: str, pattern: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            code = fmt[i + 1]
            if code not in _DIRECTIVES:
                raise ConfigError(f"time_grep {pattern!r}: the date code %{code} is not supported.")
            out.append(_DIRECTIVES[code])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "".join(out)


def tag_date(path: Path) -> datetime:
    """The acquisition date written in a raster's tags (``DATE_TAGS``)."""
    tags = read_tags(path)
    for name in DATE_TAGS:
        if name in tags:
            date = parse_date_text(tags[name])
            if date is None:
                raise FileDataError(
                    "date_parse", f"File {path}: tag {name}={tags[name]!r} is not a date.", str(path)
                )
            return date
    raise FileDataError(
        "missing_date",
        f"File {path} has no date tag ({', '.join(DATE_TAGS)}).",
        str(path),
        hint="put the date in the file name and in time_grep, or list the dates in dates_file.",
    )


@dataclass(frozen=True)
class TimeSeries:
    """The files of one sample, one per date, ordered by date."""

    key: str
    files: tuple[Path, ...]
    dates: tuple[datetime, ...]


def group_by_date(
    files: dict[Path, str], time_grep: TimeGrep
) -> tuple[dict[str, TimeSeries], list[DataProblem]]:
    """Group ``files`` (path -> what they are, for messages) into time series by sample key."""
    dated: dict[str, list[tuple[datetime, Path]]] = {}
    problems = []
    for path in files:
        try:
            key, date = time_grep.key_and_date(path)
            dated.setdefault(key, []).append((date if date is not None else tag_date(path), path))
        except FileDataError as err:
            problems.append(err.problem())
    series = {}
    for key, items in sorted(dated.items()):
        items.sort()
        days = Counter(d for d, _ in items)
        repeated = [d for d, n in days.items() if n > 1]
        if repeated:
            same = [p for d, p in items if d in repeated]
            problems.append(
                DataProblem(
                    "duplicate_date",
                    f"Sample {key!r} has {len(same)} files for the date {repeated[0]:%Y-%m-%d}: "
                    f"{', '.join(str(p) for p in same)}.",
                    str(same[0]),
                )
            )
            continue
        series[key] = TimeSeries(key, tuple(p for _, p in items), tuple(d for d, _ in items))
    return series, problems


def check_date_counts(series: dict[str, TimeSeries], what: str) -> list[DataProblem]:
    """Every sample needs the same number of dates (batches stack them): name the odd ones out."""
    counts = Counter(len(s.files) for s in series.values())
    if len(counts) <= 1:
        return []
    usual = counts.most_common(1)[0][0]
    return [
        DataProblem(
            "date_count",
            f"Sample {s.key!r} ({what}) has {len(s.files)} dates but most samples have {usual}: "
            f"{', '.join(str(p) for p in s.files)}.",
            str(s.files[0]),
        )
        for s in series.values()
        if len(s.files) != usual
    ]


def read_dates_file(path: str | Path) -> tuple[dict[str, tuple[datetime, ...]], list[DataProblem]]:
    """``sample,date[,date...]`` rows (dates in file order of a time stack) -> sample key -> dates."""
    table, problems = read_labels_file(path)
    out = {}
    for key, cells in table.items():
        dates = [parse_date_text(c) for c in cells]
        bad = [c for c, d in zip(cells, dates, strict=True) if d is None]
        if bad:
            problems.append(
                DataProblem("date_parse", f"Dates file {path} ({key}): {bad[0]!r} is not a date.", str(path))
            )
            continue
        out[key] = tuple(d for d in dates if d is not None)
    return out, problems


def temporal_coords(dates: tuple[datetime, ...] | list[datetime]) -> np.ndarray:
    """``[T, 2]`` float32 (year, day of year), what the Prithvi time encoding takes."""
    return np.array([(d.year, d.timetuple().tm_yday) for d in dates], dtype=np.float32)


def location_coords(
    crs: str | None, transform: tuple[float, ...] | None, shape: tuple[int, int], path: str
) -> np.ndarray:
    """``[2]`` float32 latitude and longitude (degrees) of the centre of a chip."""
    if crs is None or transform is None:
        raise FileDataError(
            "not_georeferenced",
            f"{path} has no CRS, so its location (use_metadata) is unknown.",
            path,
            hint="georeference the files, or set use_metadata: false.",
        )
    a, b, c, d, e, f = transform[:6]
    col, row = shape[1] / 2, shape[0] / 2
    x, y = a * col + b * row + c, d * col + e * row + f
    lon, lat = warp_transform(CRS.from_wkt(crs), CRS.from_epsg(4326), [x], [y])
    return np.array([lat[0], lon[0]], dtype=np.float32)
