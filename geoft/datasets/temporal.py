"""The dates of a dataset's samples: one file per date (``time_grep``), a ``dates_file`` for time stacks,
raster tags; and, with ``use_metadata``, the ``temporal_coords`` / ``location_coords`` of each sample."""

# No ``from __future__ import annotations``: the field types stay objects for jsonargparse and inspect.
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from geoft.datasets.dates import (
    TimeGrep,
    check_date_counts,
    group_by_date,
    location_coords,
    read_dates_file,
    tag_date,
    temporal_coords,
)
from geoft.datasets.problems import DataProblem, FileDataError
from geoft.datasets.reader import ImageReader, SampleHeader
from geoft.errors import ConfigError

Dates = tuple[datetime, ...]


@dataclass(eq=False, repr=False, kw_only=True)
class TemporalArguments:
    """Args:
    time_grep: one file per date: which part of a file name is the sample and which the date, e.g.
        ``"{sample}_{date:%Y%m%d}.tif"`` (``*``/``?`` match the rest), or a regular expression with the
        named groups ``sample`` and ``date``. The files found with the image pattern group by sample
        into ``[C, T, H, W]``, ordered by date. Without a date field the dates come from each file's
        tags (``ACQUISITIONDATETIME``, ``TIFFTAG_DATETIME``...).
    dates_file: ``sample,date[,date...]`` rows: the dates of time stacks (``expand_temporal_dimension``),
        in the order of the file's time steps.
    use_metadata: add ``temporal_coords`` ``[T, 2]`` (year, day of year) and ``location_coords``
        ``[2]`` (latitude, longitude of the chip centre) to every sample, for models that encode them
        (Prithvi ``_tl``). Single-date files without ``time_grep`` take their date from their tags.
    """

    time_grep: str | None = None
    dates_file: str | Path | None = None
    use_metadata: bool = False


class SampleDates:
    """Finds, checks and keeps the dates of one image source (one modality, or the images)."""

    def __init__(
        self,
        time_grep: str | None,
        dates_file: str | Path | None,
        use_metadata: bool,
        reader: ImageReader,
        what: str,
    ) -> None:
        if time_grep is not None and reader.expand_temporal_dimension:
            raise ConfigError(
                f"{what}: time_grep (one file per date) and expand_temporal_dimension (files stacking the "
                "dates) exclude each other.",
                hint="use time_grep for one file per date, expand_temporal_dimension for one file per sample.",
            )
        if time_grep is not None and reader.band_file_pattern is not None:
            raise ConfigError(f"{what}: time_grep cannot be combined with band_file_pattern.")
        if dates_file is not None and not reader.expand_temporal_dimension:
            raise ConfigError(
                f"{what}: dates_file lists the dates of time stacks; it needs expand_temporal_dimension: true.",
                hint="for one file per date, put the date in the file names and use time_grep.",
            )
        self.time_grep = TimeGrep.compile(time_grep) if time_grep is not None else None
        self.use_metadata = use_metadata
        self.reader = reader
        self.what = what
        self.table: dict[str, Dates] | None = None
        self.dates_file = dates_file
        self.dates: dict[str, Dates] = {}
        self.locations: dict[str, torch.Tensor] = {}

    @property
    def known(self) -> bool:
        """Whether samples have dates (from names, tags or the dates file)."""
        return self.time_grep is not None or self.dates_file is not None or self.use_metadata

    def group(self, files: list[Path]) -> tuple[dict[str, Path], list[DataProblem]]:
        """With ``time_grep``: files grouped by sample (key -> first file; the reader reads them all)."""
        assert self.time_grep is not None
        series, problems = group_by_date(dict.fromkeys(files, self.what), self.time_grep)
        problems += check_date_counts(series, self.what)
        odd = {p.path for p in problems if p.code == "date_count"}
        out = {}
        for key, s in series.items():
            if str(s.files[0]) in odd:
                continue
            self.reader.series[s.files[0]] = s
            self.dates[key] = s.dates
            out[key] = s.files[0]
        return out, problems

    def files(self, path: Path) -> tuple[Path, ...]:
        """The files of the sample whose (first) file is ``path``."""
        series = self.reader.series.get(path)
        return series.files if series is not None else (path,)

    def resolve(self, key: str, path: Path, header: SampleHeader) -> Dates | None:
        """The dates of one indexed sample (raises :class:`FileDataError` when they are missing or do
        not fit the file); kept, with the chip's location, for :meth:`coords`."""
        if self.use_metadata:
            where = location_coords(header.crs, header.transform, header.shape, str(path))
            self.locations[key] = torch.from_numpy(where)
        if self.time_grep is not None:
            return self.dates.get(key)
        if self.dates_file is not None:
            if self.table is None:
                self.table, problems = read_dates_file(self.dates_file)
                if problems:
                    raise FileDataError(problems[0].code, problems[0].message, problems[0].path)
            dates = self.table.get(key)
            if dates is None:
                raise FileDataError(
                    "missing_date",
                    f"Sample {key!r} ({path}) is not listed in dates file {self.dates_file}.",
                    str(path),
                )
            if len(dates) != header.num_times:
                raise FileDataError(
                    "date_count",
                    f"Sample {key!r}: {path} holds {header.num_times} dates but dates file "
                    f"{self.dates_file} lists {len(dates)}.",
                    str(path),
                )
            if len(set(dates)) != len(dates):
                raise FileDataError(
                    "duplicate_date",
                    f"Dates file {self.dates_file} lists a date twice for {key!r}.",
                    str(path),
                )
        elif self.use_metadata:
            if self.reader.expand_temporal_dimension:
                raise FileDataError(
                    "missing_date",
                    f"{path} stacks {header.num_times} dates, but their dates are unknown (use_metadata).",
                    str(path),
                    hint="list them in dates_file (rows 'sample,date,date...').",
                )
            dates = (tag_date(path),)
        else:
            return None
        self.dates[key] = dates
        return dates

    def coords(self, key: str) -> dict[str, Any]:
        """``temporal_coords`` and ``location_coords`` of an indexed sample, when ``use_metadata`` asks."""
        if not self.use_metadata:
            return {}
        return {
            "temporal_coords": torch.from_numpy(temporal_coords(self.dates[key])),
            "location_coords": self.locations[key],
        }


def common_dates(key: str, dated: dict[str, tuple[Dates, tuple[Path, ...]]]) -> Dates | None:
    """The dates of a sample's dated sources (``{modality: (dates, files)}``), which must be the same."""
    for source, (dates, files) in dated.items():
        for other, (theirs, their_files) in dated.items():
            lacking = sorted(set(dates) - set(theirs))
            if lacking:
                raise FileDataError(
                    "missing_date",
                    f"Sample {key!r}: modality {other!r} ({', '.join(map(str, their_files))}) has no date "
                    f"{lacking[0]:%Y-%m-%d}, which {source!r} has ({', '.join(map(str, files))}).",
                    str(their_files[0]),
                    hint="the dated modalities of a sample need the same dates (name files by the "
                    "period, e.g. {date:%Y%m}, when sensors are seen on different days).",
                )
    return next((dates for dates, _ in dated.values()), None)
