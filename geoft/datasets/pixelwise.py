"""Base of the generic pixel-wise datasets: images paired by name with label rasters of the same grid."""

from __future__ import annotations

import warnings
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rasterio.crs import CRS
from torchgeo.datasets import NonGeoDataset

from geoft.datasets.arguments import ReadingArguments, SourceArguments
from geoft.datasets.geometry import as_size, fit_to_size, target_shape
from geoft.datasets.pairing import filter_by_split, find_files, keyed, pair_by_key
from geoft.datasets.problems import DataProblem, FileDataError, checked_samples, problem_from_error
from geoft.datasets.raster import NotGeoreferencedWarning, RasterInfo, read_header, read_raster
from geoft.datasets.reader import SampleHeader, default_rgb_indices
from geoft.datasets.temporal import SampleDates, TemporalArguments
from geoft.errors import ConfigError, DataError


@dataclass(frozen=True)
class SampleRecord:
    """One sample on disk: its name key, image (file or band folder), label file and header."""

    key: str
    image: Path
    label: Path | None
    header: SampleHeader


def same_crs(a: str | None, b: str | None) -> bool:
    if a is None or b is None or a == b:
        return True
    return CRS.from_wkt(a) == CRS.from_wkt(b)


def warn_not_georeferenced(records: list[Any], name: str) -> list[DataProblem]:
    """One warning (not one per file) when images lack a CRS, as a problem to keep ([] when none)."""
    missing = [r for r in records if r.header.crs is None]
    if not missing:
        return []
    msg = (
        f"{len(missing)} of {len(records)} images in {name} are not georeferenced (no CRS/transform, e.g. "
        f"{missing[0].image}): they load fine, but predictions cannot be shown on a map."
    )
    warnings.warn(msg, NotGeoreferencedWarning, stacklevel=3)
    return [DataProblem("not_georeferenced", msg, str(missing[0].image), severity="warning")]


@dataclass(eq=False, repr=False)
class GenericPixelwiseDataset(TemporalArguments, ReadingArguments, SourceArguments, NonGeoDataset):
    """Images and per-pixel targets from folders of rasters (any rasterio format, any dtype).

    Built from a :class:`~geoft.datasets.arguments.SplitSource` (``self.source``: which files) and an
    :class:`~geoft.datasets.reader.ImageReader` (``self.reader``: how to read them), both made from the
    flat arguments of :mod:`geoft.datasets.arguments`, and the dates (``self.sample_dates``) of
    :class:`~geoft.datasets.temporal.TemporalArguments`.

    Args:
        data_root: folder of images (or one image file, for prediction).
        label_data_root: folder of labels (default: ``data_root``).
        label_grep: glob pattern (relative to the label root) of the labels. Images and labels are
            paired by the part of the name matched by the wildcards.
        no_label_replace: value put where the label is nodata/NaN (default: ``ignore_index``).
        ignore_index: target value that losses and metrics ignore; also fills padding.
    """

    target_name = "mask"

    data_root: str | Path
    _: KW_ONLY
    label_data_root: str | Path | None = None
    label_grep: str = "*"
    no_label_replace: float | None = None
    ignore_index: int | None = None

    def __post_init__(self) -> None:
        self.reader = self.image_reader()
        self.source = self.split_source(self.data_root)
        self.data_root = self.source.data_root
        self.sample_dates = SampleDates(
            self.time_grep, self.dates_file, self.use_metadata, self.reader, f"Dataset {self.name!r}"
        )
        self.label_data_root = (
            Path(self.label_data_root) if self.label_data_root is not None else self.data_root
        )
        self.chip_size = as_size(self.chip_size)
        if self.pad_to_multiple is not None and self.pad_to_multiple < 1:
            raise ConfigError(f"pad_to_multiple must be a positive integer, not {self.pad_to_multiple}.")
        if self.with_labels and self.ignore_index is None and (self.chip_size or self.pad_to_multiple):
            raise ConfigError(
                "chip_size / pad_to_multiple may pad labels, and padded pixels need a value to ignore.",
                hint="set ignore_index (e.g. -1).",
            )
        self.problems: list[DataProblem] = []
        what = f"Dataset {self.name!r} ({self.data_root})"
        self.samples = checked_samples(self._index, self.problems, self.strict, what)
        first = self.samples[0].header if self.samples else None
        if self.rgb_indices is None:
            self.rgb_indices = default_rgb_indices(
                self.reader.selected_bands, None if first is None else self._probe_channels()
            )

    # -- index -----------------------------------------------------------------------------------
    def _probe_channels(self) -> int | None:
        known = self.reader.num_channels()
        if known is not None or self.reader.band_file_pattern is not None:
            return known
        try:
            return read_header(self.samples[0].image).count
        except DataError:
            return None

    def _find_images(self) -> dict[str, Path]:
        source = self.source
        dirs = self.reader.band_file_pattern is not None
        files, problems = find_files(
            source.data_root, source.image_grep, "image", dirs=dirs, recursive=not self.with_labels
        )
        self.problems += problems
        if self.sample_dates.time_grep is not None:
            images, problems = self.sample_dates.group(files)
        else:
            images, problems = keyed(files, source.data_root, source.image_grep, "image")
        self.problems += problems
        if source.split is not None and images:
            images, problems = filter_by_split(
                images, source.split, source.ignore_split_file_extensions, source.allow_substring_split_file
            )
            self.problems += problems
        return images

    def _index(self) -> list[SampleRecord]:
        split = self.source.split
        images = self._find_images()
        if not images:
            return []
        self.reader.adopt_band_names_from(list(images.values()))
        if self.with_labels:
            files, problems = find_files(self.label_data_root, self.label_grep, "label")
            self.problems += problems
            labels, problems = keyed(files, self.label_data_root, self.label_grep, "label")
            self.problems += problems
            if split is not None:
                labels = {k: v for k, v in labels.items() if k in images}
            pairs, problems = pair_by_key(images, labels, self.image_grep, self.label_grep)
            self.problems += problems
        else:
            pairs = [(k, p, None) for k, p in images.items()]
        records = []
        for key, image, label in pairs:
            try:
                header = self.reader.header(image)
                if label is not None:
                    self._check_label_header(read_header(label), header, image)
                self.sample_dates.resolve(key, image, header)
            except DataError as err:
                self.problems.append(problem_from_error(err, path=str(image)))
                continue
            records.append(SampleRecord(key, image, label, header))
        self.problems += warn_not_georeferenced(records, f"{self.name} ({self.data_root})")
        return records

    def _check_label_header(self, label: RasterInfo, image: SampleHeader, image_path: Path) -> None:
        if label.count != 1:
            raise FileDataError(
                "label_bands",
                f"Label {label.path} has {label.count} bands; a label needs exactly 1.",
                label.path,
            )
        if label.shape != image.shape:
            raise FileDataError(
                "size_mismatch",
                f"Label {label.path} is {label.height}x{label.width} pixels but its image {image_path} is "
                f"{image.shape[0]}x{image.shape[1]}.",
                label.path,
                hint="labels must be on the image's grid; check the pairing or re-export the label.",
            )
        if not same_crs(label.crs, image.crs):
            raise FileDataError(
                "crs_mismatch",
                f"Label {label.path} and image {image_path} have different CRS "
                f"({CRS.from_wkt(label.crs).to_string()} vs {CRS.from_wkt(image.crs).to_string()}).",  # type: ignore[arg-type]
                label.path,
                hint="reproject the label onto the image grid.",
            )

    # -- sizes -----------------------------------------------------------------------------------
    def output_shape(self, record: SampleRecord) -> tuple[int, int]:
        """(H, W) of a sample after chip_size / pad_to_multiple, known from the header."""
        return target_shape(record.header.shape, self.chip_size, self.pad_to_multiple)

    def shapes(self) -> dict[tuple[int, int], list[str]]:
        """Output sizes -> image files, from headers only."""
        out: dict[tuple[int, int], list[str]] = {}
        for r in self.samples:
            out.setdefault(self.output_shape(r), []).append(str(r.image))
        return out

    @property
    def filenames(self) -> list[str]:
        return [str(r.image) for r in self.samples]

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def read_target(self, record: SampleRecord) -> np.ndarray:
        """Read and convert the label raster of ``record``."""
        assert record.label is not None
        data, nodata, info = read_raster(record.label, [1])
        if info.shape != record.header.shape:
            raise FileDataError(
                "size_mismatch",
                f"Label {record.label} is {info.height}x{info.width} but its image is "
                f"{record.header.shape[0]}x{record.header.shape[1]}.",
                str(record.label),
            )
        return self.convert_target(data[0], nodata[0], record.label)

    def convert_target(self, data: np.ndarray, nodata: np.ndarray, path: Path) -> np.ndarray:
        raise NotImplementedError

    def _fill_nodata_target(self, data: np.ndarray, nodata: np.ndarray, path: Path) -> np.ndarray:
        if not nodata.any():
            return data
        fill = self.no_label_replace if self.no_label_replace is not None else self.ignore_index
        if fill is None:
            raise FileDataError(
                "label_nodata",
                f"Label {path}: {int(nodata.sum())} pixels are nodata or NaN.",
                str(path),
                hint="set no_label_replace or ignore_index so they get a value.",
            )
        return np.where(nodata, np.asarray(fill, dtype=np.float64), data.astype(np.float64))

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.samples[index]
        image, header = self.reader.read(record.image)
        image_fill = self.reader.no_data_replace if self.reader.no_data_replace is not None else 0.0
        arrays: list[tuple[np.ndarray, float]] = [(image, image_fill)]
        if record.label is not None:
            fill = self.ignore_index if self.ignore_index is not None else 0
            arrays.append((self.read_target(record), fill))
        arrays, transform = fit_to_size(arrays, header.transform, self.chip_size, self.pad_to_multiple)
        sample: dict[str, Any] = {"image": torch.from_numpy(arrays[0])}
        if record.label is not None:
            sample[self.target_name] = torch.from_numpy(arrays[1])
        sample.update(self.sample_dates.coords(record.key))
        sample["filename"] = str(record.image)
        sample["crs"] = header.crs
        sample["transform"] = transform
        return sample
