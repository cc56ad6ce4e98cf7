"""A pixel-wise dataset of several modalities (sensors) per sample, paired BY NAME STEM with one label.

Each modality has its own folder, glob pattern and bands; the key of a file is the part of its name that
the wildcards of its pattern match (:func:`~geoft.datasets.pairing.file_key`), so
``Spain_1_S2Hand.tif``, ``Spain_1_S1Hand.tif`` and ``Spain_1_LabelHand.tif`` make one sample. Every
modality is checked against the label's grid (CRS, extent, size); a modality on the same extent at
another resolution is resampled onto the label grid (``resampling`` per modality, nearest by default
for categorical data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from geoft.datasets.dates import location_coords, tag_date, temporal_coords
from geoft.datasets.image_labels import ImageLabels
from geoft.datasets.pairing import filter_by_split, find_files, keyed
from geoft.datasets.pixelwise import same_crs
from geoft.datasets.problems import DataProblem, FileDataError, checked_samples, problem_from_error
from geoft.datasets.raster import RasterInfo, read_header, read_raster
from geoft.datasets.reader import ImageReader, SampleHeader
from geoft.datasets.segmentation import check_class_values
from geoft.datasets.temporal import Dates, SampleDates, common_dates
from geoft.errors import ConfigError, DataError

Resampling = Literal["nearest", "bilinear"]
MultiModalTask = Literal["segmentation", "regression", "classification", "scalar_regression"]
SCALAR_TASKS = ("classification", "scalar_regression")


@dataclass(frozen=True)
class MultiModalRecord:
    """One sample: its key, one file per present modality, the label file (pixel-wise tasks) or
    image-level target (scalar tasks), the label's grid (the first modality's for scalar tasks) and
    the dates."""

    key: str
    images: dict[str, Path]
    label: Path | None
    grid: RasterInfo
    target: tuple[float, ...] | None = None
    dates: Dates | None = None
    location: tuple[float, float] | None = None


def _extent(shape: tuple[int, int], transform: tuple[float, ...] | None) -> tuple[float, float, float, float]:
    assert transform is not None
    a, _, c, _, e, f = transform[:6]
    return (c, f, c + a * shape[1], f + e * shape[0])


def check_on_grid(header: SampleHeader, path: Path, grid: RasterInfo, modality: str) -> bool:
    """Raise when ``path`` is not on the label's grid; True when it must be resampled onto it."""
    label = Path(grid.path)
    if not same_crs(header.crs, grid.crs):
        raise FileDataError(
            "crs_mismatch",
            f"Modality {modality!r} file {path} and label {label} have different CRS.",
            str(path),
            hint="reproject the modality onto the label grid.",
        )
    if header.transform is None or grid.transform is None:
        if header.shape != grid.shape:
            raise FileDataError(
                "size_mismatch",
                f"Modality {modality!r} file {path} is {header.shape[0]}x{header.shape[1]} pixels but "
                f"label {label} is {grid.height}x{grid.width}, and neither is georeferenced to resample.",
                str(path),
            )
        return False
    mine, theirs = _extent(header.shape, header.transform), _extent(grid.shape, grid.transform)
    pixel = abs(grid.transform[0])
    if any(abs(m - t) > 0.5 * pixel for m, t in zip(mine, theirs, strict=True)):
        raise FileDataError(
            "grid_mismatch",
            f"Modality {modality!r} file {path} covers {tuple(round(v, 3) for v in mine)} but label "
            f"{label} covers {tuple(round(v, 3) for v in theirs)} (left, top, right, bottom).",
            str(path),
            hint="the files of one sample must cover the same area; check the pairing or re-export them.",
        )
    return header.shape != grid.shape


def resample(image: np.ndarray, shape: tuple[int, int], method: Resampling) -> np.ndarray:
    """``[C, H, W]`` or ``[C, T, H, W]`` resampled to ``shape`` (nearest or bilinear)."""
    tensor = torch.from_numpy(image)
    lead = tensor.shape[:-2]
    flat = tensor.reshape(1, -1, *tensor.shape[-2:])
    kwargs: dict[str, Any] = {"align_corners": False} if method == "bilinear" else {}
    out = F.interpolate(flat, size=shape, mode=method, **kwargs)
    return out.reshape(*lead, *shape).numpy()


@dataclass(eq=False, repr=False, kw_only=True)
class GenericMultimodalDataset(torch.utils.data.Dataset):
    """Samples ``{"image": {modality: [C, H, W] (or [C, T, H, W])}, "mask": [H, W]}`` (or ``"label"``).

    Args:
        data_root: folder per modality.
        modalities: the modalities, in order (the order of ``concat_bands``).
        label_data_root: folder of the labels (None: no labels, prediction); for the scalar tasks a
            labels file of ``sample,label`` rows (the sample's key or one of its file names).
        image_grep: glob pattern per modality (default ``"*"``).
        label_grep: glob pattern of the labels.
        split: text file of sample names to keep.
        allow_substring_file_names: a split name may match part of a file name.
        dataset_bands / output_bands: per modality, as for single-modal datasets.
        constant_scale: per modality multiplier (default 1).
        no_data_replace: value put where an image is nodata/NaN.
        expand_temporal_dimension: files stack time steps; images become ``[C, T, H, W]``.
        resampling: per modality, how a file at another resolution goes onto the label grid
            (default ``"bilinear"``; use ``"nearest"`` for categorical modalities such as land cover).
        allow_missing_modalities: keep samples that lack some modalities (zeros, and ``present`` False).
        task: ``"segmentation"`` (int64 mask), ``"regression"`` (float32 mask), ``"classification"``
            (int64 ``label``) or ``"scalar_regression"`` (float32 ``label``).
        num_classes: segmentation and classification, checked against the label values.
        class_names: classification: the classes in index order (labels may then be names).
        num_outputs: scalar regression: values per sample.
        time_grep: per modality, one file per date (see :class:`~geoft.datasets.temporal.TemporalArguments`);
            the dated modalities of a sample must have the same dates.
        dates_file: per modality, the dates of its time stacks.
        use_metadata: add ``temporal_coords`` and ``location_coords`` (of the label grid's centre).
        ignore_index: label value ignored by losses; fills label nodata unless ``no_label_replace``.
        no_label_replace: value put where the label is nodata/NaN.
        strict: raise one :class:`DataError` listing every problem, or keep them in ``problems``.
        name: what to call this dataset in messages.
    """

    data_root: dict[str, str | Path]
    modalities: list[str]
    label_data_root: str | Path | None = None
    image_grep: dict[str, str] | None = None
    label_grep: str = "*"
    split: str | Path | None = None
    allow_substring_file_names: bool = True
    dataset_bands: dict[str, list[str | int]] | None = None
    output_bands: dict[str, list[str | int]] | None = None
    constant_scale: dict[str, float] | None = None
    no_data_replace: float | None = None
    expand_temporal_dimension: bool = False
    resampling: dict[str, Resampling] | None = None
    allow_missing_modalities: bool = False
    task: MultiModalTask = "segmentation"
    num_classes: int | None = None
    ignore_index: int | None = None
    no_label_replace: float | None = None
    class_names: list[str] | None = None
    num_outputs: int = 1
    time_grep: dict[str, str] | None = None
    dates_file: dict[str, str] | None = None
    use_metadata: bool = False
    strict: bool = True
    name: str = "dataset"

    def __post_init__(self) -> None:
        if not self.modalities:
            raise ConfigError("modalities is empty: name at least one modality.")
        for arg in (
            "data_root",
            "image_grep",
            "dataset_bands",
            "output_bands",
            "constant_scale",
            "resampling",
            "time_grep",
            "dates_file",
        ):
            unknown = sorted(set(getattr(self, arg) or {}) - set(self.modalities))
            if unknown:
                raise ConfigError(f"{arg} names {unknown}, which are not in modalities {self.modalities}.")
        missing = [m for m in self.modalities if m not in self.data_root]
        if missing:
            raise ConfigError(f"data_root has no folder for modalities {missing}.")
        if self.task not in ("segmentation", "regression", *SCALAR_TASKS):
            raise ConfigError(
                f"task must be 'segmentation', 'regression', 'classification' or 'scalar_regression', "
                f"not {self.task!r}."
            )
        for m, method in (self.resampling or {}).items():
            if method not in ("nearest", "bilinear"):
                raise ConfigError(f"resampling of {m!r} must be 'nearest' or 'bilinear', not {method!r}.")
        self.readers = {
            m: ImageReader(
                dataset_bands=(self.dataset_bands or {}).get(m),
                output_bands=(self.output_bands or {}).get(m),
                constant_scale=(self.constant_scale or {}).get(m, 1.0),
                no_data_replace=self.no_data_replace,
                expand_temporal_dimension=self.expand_temporal_dimension,
            )
            for m in self.modalities
        }
        self.dates = {
            m: SampleDates(
                (self.time_grep or {}).get(m),
                (self.dates_file or {}).get(m),
                False,  # a sample's dates are its dated modalities' (checked alike), see _dates
                self.readers[m],
                f"{m!r} images",
            )
            for m in self.modalities
        }
        self.labels = None
        if self.task in SCALAR_TASKS and self.label_data_root is not None:
            self.labels = ImageLabels(
                Path(self.label_data_root), self.task, self.num_classes, self.class_names, self.num_outputs
            )
        self.problems: list[DataProblem] = []
        self.channels: dict[str, int] = {}
        self.num_times: dict[str, int] = {}
        self.samples = checked_samples(self._index, self.problems, self.strict, f"Dataset {self.name!r}")

    # -- index -----------------------------------------------------------------------------------
    def grep(self, modality: str) -> str:
        return (self.image_grep or {}).get(modality, "*")

    def _keyed(self, root: Path, pattern: str, what: str, modality: str | None = None) -> dict[str, Path]:
        files, problems = find_files(root, pattern, what)
        self.problems += problems
        if modality is not None and self.dates[modality].time_grep is not None:
            found, problems = self.dates[modality].group(files)
        else:
            found, problems = keyed(files, root, pattern, what)
        self.problems += problems
        if self.split is not None and found:
            found, problems = filter_by_split(found, self.split, True, self.allow_substring_file_names)
            self.problems += problems
        return found

    def _index(self) -> list[MultiModalRecord]:
        by_modality = {
            m: self._keyed(Path(self.data_root[m]), self.grep(m), f"{m!r} image", m) for m in self.modalities
        }
        labels = None
        if self.label_data_root is not None and self.labels is None:
            labels = self._keyed(Path(self.label_data_root), self.label_grep, "label")
        elif self.labels is not None:
            by_modality = self.labels.select(by_modality, self.data_root, self.problems)
        keys = sorted(set(labels) if labels is not None else set().union(*by_modality.values()))
        records = []
        for key in keys:
            images = {m: found[key] for m, found in by_modality.items() if key in found}
            absent = [m for m in self.modalities if m not in images]
            if not images or (absent and not self.allow_missing_modalities):
                where = labels[key] if labels is not None else next(iter(images.values()))
                self.problems.append(
                    DataProblem(
                        "missing_modality",
                        f"Sample {key!r} ({where}) has no file for modalities {absent} "
                        f"(looked in {', '.join(str(self.data_root[m]) for m in absent)} with "
                        f"{', '.join(repr(self.grep(m)) for m in absent)}); add the files, or set "
                        "allow_missing_modalities: true.",
                        str(where),
                    )
                )
                continue
            try:
                records.append(self._record(key, images, None if labels is None else labels[key]))
            except DataError as err:
                self.problems.append(problem_from_error(err, path=str(next(iter(images.values())))))
        if labels is not None:
            for m, found in by_modality.items():
                for key in sorted(set(found) - set(labels)):
                    self.problems.append(
                        DataProblem(
                            "extra_image",
                            f"{m!r} image {found[key]} has no label (name key {key!r}).",
                            str(found[key]),
                            severity="warning",
                        )
                    )
        return records

    def _record(self, key: str, images: dict[str, Path], label: Path | None) -> MultiModalRecord:
        headers = {m: self.readers[m].header(p) for m, p in images.items()}
        for m, path in images.items():
            count = self.readers[m].num_channels() or read_header(path).count
            if self.channels.setdefault(m, count) != count:
                raise FileDataError(
                    "band_count",
                    f"Modality {m!r} file {path} has {count} bands; others of {m!r} have {self.channels[m]}.",
                    str(path),
                )
        for m, path in images.items():
            times = headers[m].num_times
            if times is not None and self.num_times.setdefault(m, times) != times:
                raise FileDataError(
                    "date_count",
                    f"Modality {m!r} file {path} holds {times} dates; the other {m!r} files hold "
                    f"{self.num_times[m]}.",
                    str(path),
                    hint="every sample needs the same number of dates (batches stack them).",
                )
        if label is not None:
            grid = read_header(label)
            if grid.count != 1:
                raise FileDataError(
                    "label_bands", f"Label {label} has {grid.count} bands; needs 1.", str(label)
                )
        else:  # prediction and scalar tasks: the grid of the first modality present
            first = self.modalities[[m in images for m in self.modalities].index(True)]
            grid = read_header(images[first])
        for m, path in images.items():
            check_on_grid(headers[m], path, grid, m)
        target = self.labels.targets.get(key) if self.labels is not None else None
        dates = self._dates(key, images, headers)
        location = None
        if self.use_metadata:
            lat, lon = location_coords(grid.crs, grid.transform, grid.shape, grid.path)
            location = (float(lat), float(lon))
        return MultiModalRecord(key, images, label, grid, target, dates, location)

    def _dates(self, key: str, images: dict[str, Path], headers: dict[str, SampleHeader]) -> Dates | None:
        """The dates of a sample: those of its dated modalities, which must agree (with
        ``use_metadata`` and no dated modality, the first modality's date tag)."""
        found = {m: self.dates[m].resolve(key, p, headers[m]) for m, p in images.items()}
        dates = common_dates(key, {m: (d, self.dates[m].files(images[m])) for m, d in found.items() if d})
        if self.use_metadata and dates is None:
            dates = (tag_date(next(iter(images.values()))),)
        return dates

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    @property
    def filenames(self) -> list[str]:
        return [str(r.label or next(iter(r.images.values()))) for r in self.samples]

    def shapes(self) -> dict[tuple[int, int], list[str]]:
        out: dict[tuple[int, int], list[str]] = {}
        for r in self.samples:
            out.setdefault(r.grid.shape, []).append(str(r.label or next(iter(r.images.values()))))
        return out

    def read_modality(self, record: MultiModalRecord, modality: str) -> np.ndarray:
        image, header = self.readers[modality].read(record.images[modality])
        if header.shape != record.grid.shape:
            image = resample(image, record.grid.shape, (self.resampling or {}).get(modality, "bilinear"))
        return image

    def read_target(self, record: MultiModalRecord) -> np.ndarray:
        assert record.label is not None
        data, nodata, _ = read_raster(record.label, [1])
        values, bad = data[0].astype(np.float64), nodata[0]
        if bad.any():
            fill = self.no_label_replace if self.no_label_replace is not None else self.ignore_index
            if fill is None:
                raise FileDataError(
                    "label_nodata",
                    f"Label {record.label}: {int(bad.sum())} pixels are nodata or NaN.",
                    str(record.label),
                    hint="set no_label_replace or ignore_index so they get a value.",
                )
            values = np.where(bad, float(fill), values)
        if self.task == "regression":
            return values.astype(np.float32)
        mask = values.astype(np.int64)
        if self.num_classes is not None:
            check_class_values(mask, self.num_classes, self.ignore_index, record.label)
        return mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.samples[index]
        images: dict[str, torch.Tensor] = {}
        present: dict[str, bool] = {}
        for m in self.modalities:
            present[m] = m in record.images
            if present[m]:
                images[m] = torch.from_numpy(np.ascontiguousarray(self.read_modality(record, m)))
        reference = next(iter(images.values()))
        for m in self.modalities:
            if not present[m]:
                images[m] = reference.new_zeros((self.channels[m], *reference.shape[1:]))
        sample: dict[str, Any] = {"image": images, "present": present}
        if record.label is not None:
            sample["mask"] = torch.from_numpy(self.read_target(record))
        if record.target is not None and self.labels is not None:
            sample["label"] = self.labels.tensor(record.target)
        if self.use_metadata:
            assert record.dates is not None and record.location is not None
            sample["temporal_coords"] = torch.from_numpy(temporal_coords(record.dates))
            sample["location_coords"] = torch.tensor(record.location, dtype=torch.float32)
        sample["filename"] = str(record.label or next(iter(record.images.values())))
        sample["crs"] = record.grid.crs
        sample["transform"] = record.grid.transform
        return sample
