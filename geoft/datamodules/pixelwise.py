"""Generic datamodules for semantic segmentation and pixel-wise regression on folders of rasters.

Arguments follow the reference (TerraTorch) generic pixel-wise datamodule, plus geoft's additions:
name-stem pairing, optional means/stds (computed and cached), ``class_names``, ``ignore_index``,
``temporal_order``, ``band_file_pattern``, ``chip_size`` and ``pad_to_multiple``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoft.datamodules.base import GenericDataModuleBase
from geoft.datasets.classes import check_class_names
from geoft.datasets.reader import Band, TemporalOrder
from geoft.datasets.regression import GenericNonGeoPixelwiseRegressionDataset
from geoft.datasets.segmentation import GenericNonGeoSegmentationDataset
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind


class _PixelwiseDataModule(GenericDataModuleBase):
    def _store(self, values: dict[str, Any]) -> None:
        self.roots = {s: values[f"{s}_data_root"] for s in ("train", "val", "test", "predict")}
        self.label_roots = {s: values.get(f"{s}_label_data_root") for s in ("train", "val", "test")}
        self.splits = {s: values.get(f"{s}_split") for s in ("train", "val", "test")}
        self.img_grep = values["img_grep"]
        self.label_grep = values["label_grep"]
        self.ignore_split_file_extensions = values["ignore_split_file_extensions"]
        self.allow_substring_split_file = values["allow_substring_split_file"]
        self.dataset_bands = values["dataset_bands"]
        self.output_bands = values["output_bands"]
        self.predict_dataset_bands = values["predict_dataset_bands"] or values["dataset_bands"]
        self.predict_output_bands = values["predict_output_bands"] or values["output_bands"]
        self.band_file_pattern = values["band_file_pattern"]
        self.constant_scale = values["constant_scale"]
        self.rgb_indices = values["rgb_indices"]
        self.expand_temporal_dimension = values["expand_temporal_dimension"]
        self.temporal_order = values["temporal_order"]
        self.no_data_replace = values["no_data_replace"]
        self.no_label_replace = values["no_label_replace"]
        self.chip_size = values["chip_size"]
        self.pad_to_multiple = values["pad_to_multiple"]
        if self.temporal_order not in ("channel_major", "time_major"):
            raise ConfigError(
                f"temporal_order must be 'channel_major' or 'time_major', not {self.temporal_order!r}."
            )
        if all(r is None for r in self.roots.values()):
            raise ConfigError(
                "No data root is configured: set train_data_root (and val/test) or predict_data_root."
            )

    def data_root(self, split: str) -> Any:
        return self.roots[split]

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        predict = split == "predict"
        return {
            "data_root": self.roots[split],
            "label_data_root": None if predict else self.label_roots[split],
            "image_grep": self.img_grep,
            "label_grep": self.label_grep,
            "split": None if predict else self.splits[split],
            "ignore_split_file_extensions": self.ignore_split_file_extensions,
            "allow_substring_split_file": self.allow_substring_split_file,
            "rgb_indices": self.rgb_indices,
            "dataset_bands": self.predict_dataset_bands if predict else self.dataset_bands,
            "output_bands": self.predict_output_bands if predict else self.output_bands,
            "band_file_pattern": self.band_file_pattern,
            "constant_scale": self.constant_scale,
            "no_data_replace": self.no_data_replace,
            "no_label_replace": self.no_label_replace,
            "expand_temporal_dimension": self.expand_temporal_dimension,
            "temporal_order": self.temporal_order,
            "ignore_index": self.ignore_index,
            "chip_size": self.chip_size,
            "pad_to_multiple": self.pad_to_multiple,
            "with_labels": not predict,
        }


class GenericNonGeoSegmentationDataModule(_PixelwiseDataModule):
    """Semantic segmentation from folders of image rasters and label rasters paired by name.

    Args:
        batch_size, num_workers: data loading.
        num_classes: number of classes (label values ``0..num_classes-1``; others must be ``ignore_index``).
        train_data_root, val_data_root, test_data_root: image folders per split.
        train_label_data_root, val_label_data_root, test_label_data_root: label folders (default: the
            image folder, with ``label_grep`` telling labels apart).
        predict_data_root: folder (searched recursively) or single file to predict; no labels needed.
        img_grep, label_grep: glob patterns; images and labels pair by the wildcard part of the name.
        train_split, val_split, test_split: text files with the names to use.
        ignore_split_file_extensions, allow_substring_split_file: how split names match files.
        means, stds: per output band, or a file; None = computed from the training split and cached.
        dataset_bands: band names of the files (per time step for time stacks).
        output_bands: bands to use, in this order (subset of ``dataset_bands``).
        predict_dataset_bands, predict_output_bands: override the two above for prediction.
        band_file_pattern: one file per band (e.g. ``"*_{band}.tif"``) in a folder per sample.
        constant_scale: factor applied to raw values.
        rgb_indices: positions of R, G, B in the output bands (previews).
        train_transform, val_transform, test_transform: batch augmentations (kornia; names or
            ``{class_path, init_args}``), applied after normalisation on the device.
        expand_temporal_dimension: files hold ``T`` time steps; images become ``[C, T, H, W]``.
        temporal_order: ``channel_major`` or ``time_major`` stacking of time steps in the files.
        reduce_zero_label: labels are 1..N with 0 unknown (needs ``ignore_index``).
        no_data_replace: value for image nodata/NaN pixels (None: such pixels are an error).
        no_label_replace: value for label nodata/NaN pixels (default: ``ignore_index``).
        class_names: names of the classes (for reports and the app).
        ignore_index: label value ignored by losses and metrics.
        chip_size: centre-crop/pad every sample to this size (mixed sizes).
        pad_to_multiple: pad height/width up to a multiple (e.g. the ViT patch size).
        drop_last: drop the last incomplete training batch.
        pin_memory: pinned host memory for faster GPU transfer.
        check_stackability: refuse mixed chip sizes with batch_size > 1 (from headers, before loading).
        stats_cache_dir: where computed statistics go when the data folder is read-only.
        stats_max_samples: compute statistics from at most this many training samples.
    """

    target_kind = TaskKind.SEGMENTATION

    def __init__(
        self,
        num_classes: int,
        batch_size: int = 8,
        num_workers: int = 0,
        train_data_root: str | Path | None = None,
        val_data_root: str | Path | None = None,
        test_data_root: str | Path | None = None,
        predict_data_root: str | Path | None = None,
        img_grep: str = "*",
        label_grep: str = "*",
        train_label_data_root: str | Path | None = None,
        val_label_data_root: str | Path | None = None,
        test_label_data_root: str | Path | None = None,
        train_split: str | Path | None = None,
        val_split: str | Path | None = None,
        test_split: str | Path | None = None,
        ignore_split_file_extensions: bool = True,
        allow_substring_split_file: bool = True,
        means: list[float] | str | None = None,
        stds: list[float] | str | None = None,
        dataset_bands: list[Band] | None = None,
        output_bands: list[Band] | None = None,
        predict_dataset_bands: list[Band] | None = None,
        predict_output_bands: list[Band] | None = None,
        band_file_pattern: str | None = None,
        constant_scale: float = 1.0,
        rgb_indices: list[int] | None = None,
        train_transform: list[Any] | None = None,
        val_transform: list[Any] | None = None,
        test_transform: list[Any] | None = None,
        expand_temporal_dimension: bool = False,
        temporal_order: TemporalOrder = "channel_major",
        reduce_zero_label: bool = False,
        no_data_replace: float | None = None,
        no_label_replace: int | None = None,
        class_names: list[str] | None = None,
        ignore_index: int | None = None,
        chip_size: int | list[int] | None = None,
        pad_to_multiple: int | None = None,
        drop_last: bool = True,
        pin_memory: bool = False,
        check_stackability: bool = True,
        stats_cache_dir: str | None = None,
        stats_max_samples: int | None = None,
    ) -> None:
        super().__init__(
            GenericNonGeoSegmentationDataset,
            batch_size,
            num_workers,
            means,
            stds,
            train_transform,
            val_transform,
            test_transform,
            drop_last,
            pin_memory,
            check_stackability,
            stats_cache_dir,
            stats_max_samples,
            ignore_index,
        )
        check_class_names(num_classes, class_names)
        if reduce_zero_label and ignore_index is None:
            raise ConfigError("reduce_zero_label needs ignore_index (label 0 becomes 'unknown').")
        self.num_classes = num_classes
        self.class_names = class_names
        self.reduce_zero_label = reduce_zero_label
        self._store(locals())

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        args = super().dataset_arguments(split)
        args.update(
            num_classes=self.num_classes,
            class_names=self.class_names,
            reduce_zero_label=self.reduce_zero_label,
        )
        return args


class GenericNonGeoPixelwiseRegressionDataModule(_PixelwiseDataModule):
    """Pixel-wise regression (one float target per pixel) from image and target rasters paired by name.

    Arguments as :class:`GenericNonGeoSegmentationDataModule`, without ``num_classes``,
    ``class_names`` and ``reduce_zero_label``. ``ignore_index`` marks target pixels to ignore (and
    fills padding and target nodata); without it, padded target pixels are NaN.
    """

    target_kind = TaskKind.REGRESSION

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_data_root: str | Path | None = None,
        val_data_root: str | Path | None = None,
        test_data_root: str | Path | None = None,
        predict_data_root: str | Path | None = None,
        img_grep: str = "*",
        label_grep: str = "*",
        train_label_data_root: str | Path | None = None,
        val_label_data_root: str | Path | None = None,
        test_label_data_root: str | Path | None = None,
        train_split: str | Path | None = None,
        val_split: str | Path | None = None,
        test_split: str | Path | None = None,
        ignore_split_file_extensions: bool = True,
        allow_substring_split_file: bool = True,
        means: list[float] | str | None = None,
        stds: list[float] | str | None = None,
        dataset_bands: list[Band] | None = None,
        output_bands: list[Band] | None = None,
        predict_dataset_bands: list[Band] | None = None,
        predict_output_bands: list[Band] | None = None,
        band_file_pattern: str | None = None,
        constant_scale: float = 1.0,
        rgb_indices: list[int] | None = None,
        train_transform: list[Any] | None = None,
        val_transform: list[Any] | None = None,
        test_transform: list[Any] | None = None,
        expand_temporal_dimension: bool = False,
        temporal_order: TemporalOrder = "channel_major",
        no_data_replace: float | None = None,
        no_label_replace: float | None = None,
        ignore_index: int | None = None,
        chip_size: int | list[int] | None = None,
        pad_to_multiple: int | None = None,
        drop_last: bool = True,
        pin_memory: bool = False,
        check_stackability: bool = True,
        stats_cache_dir: str | None = None,
        stats_max_samples: int | None = None,
    ) -> None:
        super().__init__(
            GenericNonGeoPixelwiseRegressionDataset,
            batch_size,
            num_workers,
            means,
            stds,
            train_transform,
            val_transform,
            test_transform,
            drop_last,
            pin_memory,
            check_stackability,
            stats_cache_dir,
            stats_max_samples,
            ignore_index,
        )
        self._store(locals())
