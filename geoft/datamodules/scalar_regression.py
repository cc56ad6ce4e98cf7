"""Generic datamodule for image-level regression (biomass, yield...): a labels file per split gives each
image one number (or ``num_outputs`` numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoft.datamodules.classification import GenericNonGeoClassificationDataModule
from geoft.datasets.reader import Band, TemporalOrder
from geoft.datasets.scalar_regression import GenericNonGeoScalarRegressionDataset
from geoft.task_kinds import TaskKind

# Classification arguments that have no meaning for regression targets.
_CLASS_ARGUMENTS = ("num_classes", "class_names", "multi_label")


class GenericNonGeoScalarRegressionDataModule(GenericNonGeoClassificationDataModule):
    """Image-level regression: ``label`` float32 per image (``[num_outputs]`` when there are several).

    Args:
        train_labels_file, val_labels_file, test_labels_file: ``filename,value[,value...]`` files
            (required for the splits that are configured; prediction reads images only).
        num_outputs: values per image.
        others: as :class:`~geoft.datamodules.classification.GenericNonGeoClassificationDataModule`.
    """

    target_kind = TaskKind.SCALAR_REGRESSION

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_data_root: str | Path | None = None,
        val_data_root: str | Path | None = None,
        test_data_root: str | Path | None = None,
        predict_data_root: str | Path | None = None,
        train_labels_file: str | Path | None = None,
        val_labels_file: str | Path | None = None,
        test_labels_file: str | Path | None = None,
        num_outputs: int = 1,
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
            num_classes=1,
            batch_size=batch_size,
            num_workers=num_workers,
            train_data_root=train_data_root,
            val_data_root=val_data_root,
            test_data_root=test_data_root,
            predict_data_root=predict_data_root,
            train_labels_file=train_labels_file,
            val_labels_file=val_labels_file,
            test_labels_file=test_labels_file,
            img_grep=img_grep,
            train_split=train_split,
            val_split=val_split,
            test_split=test_split,
            ignore_split_file_extensions=ignore_split_file_extensions,
            allow_substring_split_file=allow_substring_split_file,
            means=means,
            stds=stds,
            dataset_bands=dataset_bands,
            output_bands=output_bands,
            predict_dataset_bands=predict_dataset_bands,
            predict_output_bands=predict_output_bands,
            band_file_pattern=band_file_pattern,
            constant_scale=constant_scale,
            rgb_indices=rgb_indices,
            train_transform=train_transform,
            val_transform=val_transform,
            test_transform=test_transform,
            expand_temporal_dimension=expand_temporal_dimension,
            temporal_order=temporal_order,
            no_data_replace=no_data_replace,
            chip_size=chip_size,
            pad_to_multiple=pad_to_multiple,
            drop_last=drop_last,
            pin_memory=pin_memory,
            check_stackability=check_stackability,
            stats_cache_dir=stats_cache_dir,
            stats_max_samples=stats_max_samples,
        )
        self.dataset_class = GenericNonGeoScalarRegressionDataset
        self.num_outputs = num_outputs
        self.num_classes = None  # type: ignore[assignment]

    def resolve_class_names(self) -> list[str] | None:
        return None

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        args = {k: v for k, v in super().dataset_arguments(split).items() if k not in _CLASS_ARGUMENTS}
        args["num_outputs"] = self.num_outputs
        return args


__all__ = ["GenericNonGeoScalarRegressionDataModule"]
