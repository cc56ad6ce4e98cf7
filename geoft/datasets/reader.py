"""How one sample's image becomes a float32 array: band selection, per-band files, time steps, nodata.

:class:`ImageReader` holds the reading options shared by every generic dataset. It reads each file
once per sample, only the bands asked for, and checks band counts against ``dataset_bands``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from geoft.datasets.dates import TimeSeries
from geoft.datasets.problems import FileDataError
from geoft.datasets.raster import RasterInfo, read_header, read_raster
from geoft.datasets.reader_options import Band, ReaderOptions
from geoft.errors import ConfigError, DataError

RGB_NAMES = (("RED", "R", "B04", "B4"), ("GREEN", "G", "B03", "B3"), ("BLUE", "B", "B02", "B2"))


@dataclass(frozen=True)
class SampleHeader:
    """Output grid of a sample as its headers describe it (no pixels read)."""

    shape: tuple[int, int]
    crs: str | None
    transform: tuple[float, float, float, float, float, float] | None
    num_times: int | None


def default_rgb_indices(bands: list[Band] | None, num_bands: int | None) -> list[int] | None:
    """RGB positions found by band name (RED/GREEN/BLUE, B04/B03/B02), else ``[0, 1, 2]`` when possible."""
    if bands:
        upper = [str(b).upper() for b in bands]
        found = [next((upper.index(n) for n in names if n in upper), None) for names in RGB_NAMES]
        if all(i is not None for i in found):
            return [int(i) for i in found]  # type: ignore[arg-type]
    count = len(bands) if bands else num_bands
    if count is not None and count >= 3:
        return [0, 1, 2]
    return None


@dataclass(kw_only=True)
class ImageReader(ReaderOptions):
    """Turns raster files into sample images, as its :class:`ReaderOptions` say."""

    def __post_init__(self) -> None:
        if not hasattr(self, "series"):
            # first file -> the sample's files, one per date (time_grep): read and stacked as [C, T, H, W]
            self.series: dict[Path, TimeSeries] = {}
        bands = self.dataset_bands
        if bands is not None:
            bands = [b for b in bands]
            dup = sorted({str(b) for b in bands if bands.count(b) > 1})
            if dup:
                raise ConfigError(f"dataset_bands lists {dup} more than once.")
        if self.output_bands is not None and bands is None and self.band_file_pattern is None:
            return  # band names come from the files' band descriptions: see adopt_band_names
        if self.output_bands is not None:
            if bands is None:
                raise ConfigError(
                    "output_bands needs dataset_bands: name the bands of the files so output bands can refer to them."
                )
            missing = [b for b in self.output_bands if b not in bands]
            if missing:
                raise ConfigError(
                    f"output_bands {missing} are not in dataset_bands {list(bands)}.",
                    hint="output_bands must be a subset of dataset_bands, with the same spelling.",
                )
        if self.expand_temporal_dimension and bands is None:
            raise ConfigError("expand_temporal_dimension needs dataset_bands (the bands of one time step).")
        if self.temporal_order not in ("channel_major", "time_major"):
            raise ConfigError(
                f"temporal_order must be 'channel_major' or 'time_major', not {self.temporal_order!r}."
            )
        if self.band_file_pattern is not None:
            if "{band}" not in self.band_file_pattern:
                raise ConfigError(f"band_file_pattern {self.band_file_pattern!r} must contain '{{band}}'.")
            if bands is None:
                raise ConfigError("band_file_pattern needs dataset_bands (the band names to look for).")
            if self.expand_temporal_dimension:
                raise ConfigError(
                    "band_file_pattern (one file per band) cannot be combined with expand_temporal_dimension."
                )

    def adopt_band_names_from(self, paths: list[Path]) -> None:
        """:meth:`adopt_band_names` from the first readable file of ``paths``."""
        for path in paths:
            try:
                return self.adopt_band_names(path)
            except DataError:
                continue  # reported with the file's other problems

    def adopt_band_names(self, path: Path) -> None:
        """Without ``dataset_bands`` but with ``output_bands``, name the bands from the file's band
        descriptions (e.g. Sentinel-2 exports that label bands ``B1``...``B12``)."""
        if self.dataset_bands is not None or self.output_bands is None or self.band_file_pattern is not None:
            return
        info = read_header(path)
        names = list(info.descriptions)
        if not names or any(not n for n in names) or len(set(names)) != len(names):
            raise ConfigError(
                f"output_bands {list(self.output_bands)} needs dataset_bands: {path} has no (unique) band "
                "descriptions to name its bands.",
                hint="list the bands of the files, in order, in dataset_bands.",
            )
        self.dataset_bands = names  # type: ignore[assignment]
        self.__post_init__()

    # -- band bookkeeping --------------------------------------------------------------------------
    @property
    def selected_bands(self) -> list[Band] | None:
        return list(self.output_bands) if self.output_bands is not None else self.dataset_bands

    def _selected_positions(self) -> list[int] | None:
        if self.dataset_bands is None:
            return None
        return [self.dataset_bands.index(b) for b in (self.selected_bands or [])]

    def num_channels(self, file_count: int | None = None) -> int | None:
        """Channels of the output image (known without files when bands are named)."""
        selected = self.selected_bands
        return len(selected) if selected is not None else file_count

    def band_files(self, folder: Path) -> list[Path]:
        """The per-band files of a sample folder, in output-band order."""
        assert self.band_file_pattern is not None and self.selected_bands is not None
        files = []
        for band in self.selected_bands:
            pattern = self.band_file_pattern.format(band=band)
            matches = sorted(p for p in folder.glob(pattern) if p.is_file())
            if len(matches) != 1:
                what = (
                    "no file"
                    if not matches
                    else f"{len(matches)} files ({', '.join(m.name for m in matches[:3])})"
                )
                raise FileDataError(
                    "missing_band_file",
                    f"Sample folder {folder}: {what} match {pattern!r} for band {band!r}.",
                    str(folder),
                    hint="each sample folder needs exactly one file per band; check band_file_pattern and dataset_bands.",
                )
            files.append(matches[0])
        return files

    def _time_steps(self, info: RasterInfo) -> int:
        assert self.dataset_bands is not None
        n = len(self.dataset_bands)
        if info.count % n:
            raise FileDataError(
                "band_count",
                f"{info.path} has {info.count} bands, not a multiple of the {n} dataset_bands per time step.",
                info.path,
                hint="check dataset_bands, or set expand_temporal_dimension: false for single-date images.",
            )
        return info.count // n

    def _check_count(self, info: RasterInfo) -> None:
        if self.expand_temporal_dimension:
            self._time_steps(info)
        elif self.dataset_bands is not None and info.count != len(self.dataset_bands):
            raise FileDataError(
                "band_count",
                f"{info.path} has {info.count} bands but dataset_bands lists {len(self.dataset_bands)} "
                f"({', '.join(map(str, self.dataset_bands))}).",
                info.path,
                hint="make dataset_bands name every band of the files, in file order.",
            )

    # -- headers -----------------------------------------------------------------------------------
    def header(self, path: Path) -> SampleHeader:
        """Cheap check of one sample (headers only): band count, output grid."""
        if self.band_file_pattern is not None:
            if not path.is_dir():
                raise FileDataError(
                    "not_a_folder",
                    f"{path} is not a folder, but band_file_pattern expects one folder per sample.",
                    str(path),
                )
            infos = [read_header(p) for p in self.band_files(path)]
            finest = max(infos, key=lambda i: i.width * i.height)
            return SampleHeader(finest.shape, finest.crs, finest.transform, None)
        if path in self.series:
            return self._series_header(self.series[path])
        info = read_header(path)
        self._check_count(info)
        times = self._time_steps(info) if self.expand_temporal_dimension else None
        return SampleHeader(info.shape, info.crs, info.transform, times)

    def _series_header(self, series: TimeSeries) -> SampleHeader:
        infos = [read_header(p) for p in series.files]
        for info in infos:
            self._check_count(info)
            if info.shape != infos[0].shape or info.crs != infos[0].crs:
                raise FileDataError(
                    "date_grid",
                    f"Sample {series.key!r}: {info.path} is {info.height}x{info.width} pixels, but "
                    f"{infos[0].path} (another date) is {infos[0].height}x{infos[0].width}, or their CRS differ.",
                    info.path,
                    hint="the dates of one sample must be on one grid.",
                )
        first = infos[0]
        return SampleHeader(first.shape, first.crs, first.transform, len(infos))

    # -- pixels ------------------------------------------------------------------------------------
    def read_masked(self, path: Path) -> tuple[np.ndarray, np.ndarray, SampleHeader]:
        """Scaled float32 image, its nodata mask (True = nodata/NaN) and grid; nothing replaced."""
        if self.band_file_pattern is not None:
            data, mask, header = self._read_band_files(path)
        elif path in self.series:
            data, mask, header = self._read_series(self.series[path])
        else:
            data, mask, header = self._read_stack(path)
        image = data.astype(np.float32, copy=False)
        if self.constant_scale != 1:
            image = image * np.float32(self.constant_scale)
        return image, mask, header

    def read(self, path: Path) -> tuple[np.ndarray, SampleHeader]:
        """Read a sample image: float32 ``[C, H, W]`` (or ``[C, T, H, W]``) and its grid.

        Nodata/NaN values become ``no_data_replace``; without it they are an error, as is a chip
        with no valid value at all.
        """
        image, mask, header = self.read_masked(path)
        n_bad = int(mask.sum())
        if n_bad:
            if n_bad == mask.size:
                raise FileDataError(
                    "all_nodata",
                    f"{path}: every pixel is nodata (or NaN); the chip holds no data.",
                    str(path),
                    hint="remove this chip from the dataset (or from the split file).",
                )
            if self.no_data_replace is None:
                raise FileDataError(
                    "nodata_values",
                    f"{path}: {n_bad} of {mask.size} values are nodata or NaN.",
                    str(path),
                    hint="set no_data_replace (e.g. 0) to fill them, or fix the file.",
                )
            image = np.where(mask, np.float32(self.no_data_replace), image)
        return np.ascontiguousarray(image, dtype=np.float32), header

    def _stack_indexes(self, info: RasterInfo) -> list[int] | None:
        """1-based file bands to read, in output order (time steps inner for time stacks)."""
        self._check_count(info)
        positions = self._selected_positions()
        if positions is None:
            return None
        if self.expand_temporal_dimension:
            assert self.dataset_bands is not None
            t, c = self._time_steps(info), len(self.dataset_bands)
            if self.temporal_order == "channel_major":
                return [p * t + k + 1 for p in positions for k in range(t)]
            return [k * c + p + 1 for p in positions for k in range(t)]
        if positions == list(range(info.count)):
            return None
        return [p + 1 for p in positions]

    def _read_stack(self, path: Path) -> tuple[np.ndarray, np.ndarray, SampleHeader]:
        if path.is_dir():
            raise FileDataError(
                "is_directory",
                f"{path} is a directory, not a raster file; it matched the image pattern by name.",
                str(path),
                hint="rename it, make img_grep more specific, or set band_file_pattern for one file per band.",
            )
        data, mask, info = read_raster(path, self._stack_indexes)
        h, w = data.shape[-2:]
        times = None
        if self.expand_temporal_dimension:
            times = self._time_steps(info)
            data = data.reshape(-1, times, h, w)
            mask = mask.reshape(-1, times, h, w)
        return data, mask, SampleHeader((h, w), info.crs, info.transform, times)

    def _read_series(self, series: TimeSeries) -> tuple[np.ndarray, np.ndarray, SampleHeader]:
        reads = [self._read_stack(p) for p in series.files]
        shapes = {r[2].shape for r in reads}
        if len(shapes) > 1:
            self._series_header(series)  # raises, naming the files
        data, mask = np.stack([r[0] for r in reads], axis=1), np.stack([r[1] for r in reads], axis=1)
        first = reads[0][2]
        return data, mask, SampleHeader(first.shape, first.crs, first.transform, len(reads))

    def _read_band_files(self, folder: Path) -> tuple[np.ndarray, np.ndarray, SampleHeader]:
        reads = [read_raster(f, [1]) for f in self.band_files(folder)]
        finest = max((r[2] for r in reads), key=lambda i: i.width * i.height)
        datas, masks = [], []
        for data, mask, info in reads:
            band = torch.from_numpy(data.astype(np.float32))[None]
            bad = torch.from_numpy(mask)[None].float()
            if info.shape != finest.shape:
                # bilinear to the finest grid, as GDAL would; the nodata mask follows by nearest neighbour
                band = F.interpolate(band, size=finest.shape, mode="bilinear", align_corners=False)
                bad = F.interpolate(bad, size=finest.shape, mode="nearest")
            datas.append(band[0, 0].numpy())
            masks.append(bad[0, 0].numpy() > 0.5)
        header = SampleHeader(finest.shape, finest.crs, finest.transform, None)
        return np.stack(datas), np.stack(masks), header
