"""The flat, TerraTorch-compatible arguments of the generic datasets, declared once, and what they build:
a :class:`SplitSource` (which files) and an :class:`~geoft.datasets.reader.ImageReader` (how to read them).

The groups are keyword-only dataclasses; each dataset is a dataclass of the groups it needs, after its
own positional ``data_root`` (and ``num_classes``).
"""

# No ``from __future__ import annotations``: the field types stay objects for jsonargparse and inspect.
from dataclasses import dataclass
from pathlib import Path

from geoft.datasets.reader import Band, ImageReader, TemporalOrder


@dataclass(frozen=True)
class SplitSource:
    """Which files make a split: images under ``data_root`` matching ``image_grep``, kept by a split file."""

    data_root: Path
    image_grep: str = "*"
    split: str | Path | None = None
    ignore_split_file_extensions: bool = True
    allow_substring_split_file: bool = True


@dataclass(eq=False, repr=False, kw_only=True)
class SourceArguments:
    """Args:
    image_grep: glob pattern (relative to the root) of the images.
    split: text file of names (one per line) to keep.
    ignore_split_file_extensions: split names match files whatever their extension.
    allow_substring_split_file: a split name may match part of a file name.
    """

    image_grep: str = "*"
    split: str | Path | None = None
    ignore_split_file_extensions: bool = True
    allow_substring_split_file: bool = True

    def split_source(self, data_root: str | Path) -> SplitSource:
        return SplitSource(
            Path(data_root),
            self.image_grep,
            self.split,
            self.ignore_split_file_extensions,
            self.allow_substring_split_file,
        )


@dataclass(eq=False, repr=False, kw_only=True)
class ReadingArguments:
    """Args:
    rgb_indices: positions of red, green, blue among the output bands (for previews).
    dataset_bands: see :class:`~geoft.datasets.reader.ImageReader`.
    output_bands: see :class:`~geoft.datasets.reader.ImageReader`.
    band_file_pattern: see :class:`~geoft.datasets.reader.ImageReader`.
    constant_scale: see :class:`~geoft.datasets.reader.ImageReader`.
    no_data_replace: see :class:`~geoft.datasets.reader.ImageReader`.
    expand_temporal_dimension: see :class:`~geoft.datasets.reader.ImageReader`.
    temporal_order: see :class:`~geoft.datasets.reader.ImageReader`.
    chip_size: centre-crop / pad every sample to this size (mixed chip sizes).
    pad_to_multiple: pad (bottom/right) height and width up to a multiple of this.
    with_labels: False to read images only (prediction).
    strict: raise one :class:`DataError` listing every problem (True), or keep them in
        ``self.problems`` and drop the bad samples (False, used by validation).
    name: what to call this dataset in messages (e.g. ``"train"``).
    """

    rgb_indices: list[int] | None = None
    dataset_bands: list[Band] | None = None
    output_bands: list[Band] | None = None
    band_file_pattern: str | None = None
    constant_scale: float = 1.0
    no_data_replace: float | None = None
    expand_temporal_dimension: bool = False
    temporal_order: TemporalOrder = "channel_major"
    chip_size: int | tuple[int, int] | None = None
    pad_to_multiple: int | None = None
    with_labels: bool = True
    strict: bool = True
    name: str = "dataset"

    def image_reader(self) -> ImageReader:
        return ImageReader(
            dataset_bands=None if self.dataset_bands is None else list(self.dataset_bands),
            output_bands=None if self.output_bands is None else list(self.output_bands),
            band_file_pattern=self.band_file_pattern,
            constant_scale=self.constant_scale,
            no_data_replace=self.no_data_replace,
            expand_temporal_dimension=self.expand_temporal_dimension,
            temporal_order=self.temporal_order,
        )
