"""The flat, TerraTorch-compatible arguments of the generic datamodules, declared once.

Each group is a keyword-only dataclass; a datamodule is a dataclass made of the groups it needs, so
its ``__init__`` (what jsonargparse reads for ``geoft fit --help``, validation and ``data.init_args``)
lists every argument with its type, default and the help text below, written here only.
"""

# No ``from __future__ import annotations``: the field types are real objects, so jsonargparse reads
# them without resolving names in the module of each datamodule made of these groups.
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from geoft.datasets.reader_options import Band, ReaderOptions


@dataclass(eq=False, repr=False, kw_only=True)
class LoaderArguments:
    """How batches are made.

    Args:
        batch_size: samples per batch.
        num_workers: data loading worker processes.
        means: per output band, or a file; None = computed from the training split and cached.
        stds: per output band, or a file; given with ``means`` or not at all.
        train_transform: batch augmentations of the training split (kornia; names or
            ``{class_path, init_args}``), applied after normalisation on the device.
        val_transform: batch augmentations of the validation split.
        test_transform: batch augmentations of the test split.
        drop_last: drop the last incomplete training batch.
        pin_memory: pinned host memory for faster GPU transfer.
        check_stackability: refuse mixed chip sizes with batch_size > 1 (from headers, before loading).
        stats_cache_dir: where computed statistics go when the data folder is read-only.
        stats_max_samples: compute statistics from at most this many training samples.
        data_check: before fit/validate/test, ``full`` reads every file of the splits in use (corrupt
            files, label values, NaN, all-nodata chips, grids; verdicts cached per file); ``headers`` and
            ``off`` skip that read (indexing and the header checks always run).
    """

    batch_size: int = 8
    num_workers: int = 0
    means: list[float] | str | None = None
    stds: list[float] | str | None = None
    train_transform: list[Any] | None = None
    val_transform: list[Any] | None = None
    test_transform: list[Any] | None = None
    drop_last: bool = True
    pin_memory: bool = False
    check_stackability: bool = True
    stats_cache_dir: str | None = None
    stats_max_samples: int | None = None
    data_check: Literal["full", "headers", "off"] = "full"


@dataclass(eq=False, repr=False, kw_only=True)
class SplitArguments:
    """Where each split's images are.

    Args:
        train_data_root: image folder of the training split.
        val_data_root: image folder of the validation split.
        test_data_root: image folder of the test split.
        predict_data_root: folder (searched recursively) or single file to predict; no labels needed.
        img_grep: glob pattern of the images; images and labels pair by the wildcard part of the name.
        train_split: text file with the names of the training samples to use.
        val_split: text file with the names of the validation samples to use.
        test_split: text file with the names of the test samples to use.
        ignore_split_file_extensions: split names match files whatever their extension.
        allow_substring_split_file: a split name may match part of a file name.
    """

    train_data_root: str | Path | None = None
    val_data_root: str | Path | None = None
    test_data_root: str | Path | None = None
    predict_data_root: str | Path | None = None
    img_grep: str = "*"
    train_split: str | Path | None = None
    val_split: str | Path | None = None
    test_split: str | Path | None = None
    ignore_split_file_extensions: bool = True
    allow_substring_split_file: bool = True


@dataclass(eq=False, repr=False, kw_only=True)
class RasterArguments(ReaderOptions):
    """How raster files become images: the :class:`~geoft.datasets.reader_options.ReaderOptions`, and

    Args:
        predict_dataset_bands: ``dataset_bands`` of the files to predict (default: ``dataset_bands``).
        predict_output_bands: ``output_bands`` for prediction (default: ``output_bands``).
        rgb_indices: positions of R, G, B in the output bands (previews).
        chip_size: centre-crop/pad every sample to this size (mixed sizes).
        pad_to_multiple: pad height/width up to a multiple (e.g. the ViT patch size).
    """

    predict_dataset_bands: list[Band] | None = None
    predict_output_bands: list[Band] | None = None
    rgb_indices: list[int] | None = None
    chip_size: int | list[int] | None = None
    pad_to_multiple: int | None = None


@dataclass(eq=False, repr=False, kw_only=True)
class LabelRasterArguments:
    """Where the label rasters of pixel-wise tasks are.

    Args:
        label_grep: glob pattern of the labels; they pair with images by the wildcard part of the name.
        train_label_data_root: label folder of the training split (default: its image folder, with
            ``label_grep`` telling labels apart).
        val_label_data_root: label folder of the validation split.
        test_label_data_root: label folder of the test split.
        ignore_index: label value ignored by losses and metrics (also fills padding and label nodata).
    """

    label_grep: str = "*"
    train_label_data_root: str | Path | None = None
    val_label_data_root: str | Path | None = None
    test_label_data_root: str | Path | None = None
    ignore_index: int | None = None


def passed_through(arguments: Any, target: type) -> dict[str, Any]:
    """The datamodule's arguments that ``target`` (a dataset class) takes under the same name."""
    import inspect

    accepted = inspect.signature(target).parameters
    return {f.name: getattr(arguments, f.name) for f in fields(arguments) if f.name in accepted}
