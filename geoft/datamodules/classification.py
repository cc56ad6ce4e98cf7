"""Generic datamodule for (multi-label) scene classification from folders of rasters.

Labels come from class sub-folders (``train/<class>/<image>``) or from a labels file per split
(``filename,label`` rows; several labels per row for ``multi_label``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoft.datamodules.base import GenericDataModuleBase
from geoft.datasets.classes import check_class_names
from geoft.datasets.classification import GenericNonGeoClassificationDataset
from geoft.datasets.reader import Band, TemporalOrder
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind


class GenericNonGeoClassificationDataModule(GenericDataModuleBase):
    """Scene classification: one ``label`` per image (int), or several (multi-hot, ``multi_label``).

    Args:
        num_classes: number of classes.
        train_labels_file, val_labels_file, test_labels_file: ``filename,label`` files; without
            them, the data roots hold one sub-folder per class.
        class_names: class names in index order (default: from the training split's folders/file).
        multi_label: several labels per image.
        img_grep: glob for images (inside class folders when using them).
        others: as :class:`~geoft.datamodules.pixelwise.GenericNonGeoSegmentationDataModule`.
    """

    target_kind = TaskKind.CLASSIFICATION

    def __init__(
        self,
        num_classes: int,
        batch_size: int = 8,
        num_workers: int = 0,
        train_data_root: str | Path | None = None,
        val_data_root: str | Path | None = None,
        test_data_root: str | Path | None = None,
        predict_data_root: str | Path | None = None,
        train_labels_file: str | Path | None = None,
        val_labels_file: str | Path | None = None,
        test_labels_file: str | Path | None = None,
        class_names: list[str] | None = None,
        multi_label: bool = False,
        img_grep: str = "*",
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
        chip_size: int | list[int] | None = None,
        pad_to_multiple: int | None = None,
        drop_last: bool = True,
        pin_memory: bool = False,
        check_stackability: bool = True,
        stats_cache_dir: str | None = None,
        stats_max_samples: int | None = None,
    ) -> None:
        super().__init__(
            GenericNonGeoClassificationDataset,
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
            None,
        )
        check_class_names(num_classes, class_names)
        if temporal_order not in ("channel_major", "time_major"):
            raise ConfigError(
                f"temporal_order must be 'channel_major' or 'time_major', not {temporal_order!r}."
            )
        self.num_classes = num_classes
        self.class_names = class_names
        self.multi_label = multi_label
        self.roots = {
            "train": train_data_root,
            "val": val_data_root,
            "test": test_data_root,
            "predict": predict_data_root,
        }
        if all(r is None for r in self.roots.values()):
            raise ConfigError(
                "No data root is configured: set train_data_root (and val/test) or predict_data_root."
            )
        self.labels_files = {"train": train_labels_file, "val": val_labels_file, "test": test_labels_file}
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.img_grep = img_grep
        self.ignore_split_file_extensions = ignore_split_file_extensions
        self.allow_substring_split_file = allow_substring_split_file
        self.dataset_bands = dataset_bands
        self.output_bands = output_bands
        self.predict_dataset_bands = predict_dataset_bands or dataset_bands
        self.predict_output_bands = predict_output_bands or output_bands
        self.band_file_pattern = band_file_pattern
        self.constant_scale = constant_scale
        self.rgb_indices = rgb_indices
        self.expand_temporal_dimension = expand_temporal_dimension
        self.temporal_order = temporal_order
        self.no_data_replace = no_data_replace
        self.chip_size = chip_size
        self.pad_to_multiple = pad_to_multiple

    def data_root(self, split: str) -> Any:
        return self.roots[split]

    def resolve_class_names(self) -> list[str] | None:
        """Class names: given, or read from the training split (so every split uses one order)."""
        if self.class_names is None and self.roots["train"] is not None:
            train = self.train_dataset if self.train_dataset is not None else self.build_dataset("train")
            self.class_names = train.class_names
        return self.class_names

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        predict = split == "predict"
        if split != "train":
            self.resolve_class_names()
        return {
            "data_root": self.roots[split],
            "num_classes": self.num_classes,
            "labels_file": None if predict else self.labels_files[split],
            "class_names": self.class_names,
            "multi_label": self.multi_label,
            "image_grep": self.img_grep,
            "split": None if predict else self.splits[split],
            "ignore_split_file_extensions": self.ignore_split_file_extensions,
            "allow_substring_split_file": self.allow_substring_split_file,
            "rgb_indices": self.rgb_indices,
            "dataset_bands": self.predict_dataset_bands if predict else self.dataset_bands,
            "output_bands": self.predict_output_bands if predict else self.output_bands,
            "band_file_pattern": self.band_file_pattern,
            "constant_scale": self.constant_scale,
            "no_data_replace": self.no_data_replace,
            "expand_temporal_dimension": self.expand_temporal_dimension,
            "temporal_order": self.temporal_order,
            "chip_size": self.chip_size,
            "pad_to_multiple": self.pad_to_multiple,
            "with_labels": not predict,
        }

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.class_names is None and self.train_dataset is not None:
            self.class_names = self.train_dataset.class_names
