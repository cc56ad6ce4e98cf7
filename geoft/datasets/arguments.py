"""The flat, TerraTorch-compatible arguments of the generic datasets, declared once, and what they build:
a :class:`SplitSource` (which files) and an :class:`~geoft.datasets.reader.ImageReader` (how to read them).

The groups are keyword-only dataclasses; each dataset is a dataclass of the groups it needs, after its
own positional ``data_root`` (and ``num_classes``).
"""

# No ``from __future__ import annotations``: the field types stay objects for jsonargparse and inspect.
from dataclasses import dataclass
from pathlib import Path

from geoft.datasets.reader import ImageReader
from geoft.datasets.reader_options import ReaderOptions


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
class ReadingArguments(ReaderOptions):
    """Args:
    rgb_indices: positions of red, green, blue among the output bands (for previews).
    chip_size: centre-crop / pad every sample to this size (mixed chip sizes).
    pad_to_multiple: pad (bottom/right) height and width up to a multiple of this.
    with_labels: False to read images only (prediction).
    strict: raise one :class:`DataError` listing every problem (True), or keep them in
        ``self.problems`` and drop the bad samples (False, used by validation).
    name: what to call this dataset in messages (e.g. ``"train"``).
    """

    rgb_indices: list[int] | None = None
    chip_size: int | tuple[int, int] | None = None
    pad_to_multiple: int | None = None
    with_labels: bool = True
    strict: bool = True
    name: str = "dataset"

    def image_reader(self) -> ImageReader:
        return ImageReader(**self.reader_options())  # type: ignore[arg-type]
