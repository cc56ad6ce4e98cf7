"""The options that say how raster files become a sample image, declared once.

:class:`ReaderOptions` is the base of :class:`~geoft.datasets.reader.ImageReader` (which reads) and of
the datasets' and datamodules' flat arguments (which configure it).
"""

# No ``from __future__ import annotations``: the field types stay objects for jsonargparse.
from dataclasses import dataclass
from typing import Literal

Band = str | int
TemporalOrder = Literal["channel_major", "time_major"]


@dataclass(eq=False, repr=False, kw_only=True)
class ReaderOptions:
    """Options that turn raster files into a sample image.

    Args:
        dataset_bands: names of the bands in each file (per time step for multi-temporal stacks), or
            of the per-band files. Needed for ``output_bands``, per-band files and time stacks.
        output_bands: the bands to return, in this order (a subset of ``dataset_bands``).
        band_file_pattern: set for one file per band: each sample is a folder, and the file of band
            ``B02`` is found with this glob, ``{band}`` replaced by the name, e.g. ``"*_{band}.tif"``.
            Bands of different resolutions are resampled (bilinear) to the finest one.
        constant_scale: every value is multiplied by this (e.g. ``0.0001`` for reflectance x 10000).
        no_data_replace: value put where the file has its nodata value or NaN (after scaling). When
            None, a sample with nodata pixels raises :class:`DataError`.
        expand_temporal_dimension: files stack ``T`` time steps of ``dataset_bands``; samples become
            ``[C, T, H, W]``.
        temporal_order: how time steps are stacked in the file: ``"channel_major"`` (all time steps of
            band 1, then of band 2..., the reference's convention) or ``"time_major"`` (all bands of time
            1, then of time 2...).
    """

    dataset_bands: list[Band] | None = None
    output_bands: list[Band] | None = None
    band_file_pattern: str | None = None
    constant_scale: float = 1.0
    no_data_replace: float | None = None
    expand_temporal_dimension: bool = False
    temporal_order: TemporalOrder = "channel_major"

    def reader_options(self) -> dict[str, object]:
        """These options as keyword arguments (band lists copied)."""
        return {
            "dataset_bands": None if self.dataset_bands is None else list(self.dataset_bands),
            "output_bands": None if self.output_bands is None else list(self.output_bands),
            "band_file_pattern": self.band_file_pattern,
            "constant_scale": self.constant_scale,
            "no_data_replace": self.no_data_replace,
            "expand_temporal_dimension": self.expand_temporal_dimension,
            "temporal_order": self.temporal_order,
        }
