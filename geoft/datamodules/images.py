"""Unlabeled images: a datamodule whose batches hold ``image`` (and its georeferencing) only, for
continued pre-training (:class:`~geoft.tasks.ReconstructionTask`) and embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoft.datamodules.classification import GenericNonGeoClassificationDataModule
from geoft.datasets.reader import Band


class GenericNonGeoImageDataModule(GenericNonGeoClassificationDataModule):
    """Folders of rasters (searched recursively with ``img_grep``), no labels.

    Args: as :class:`~geoft.datamodules.classification.GenericNonGeoClassificationDataModule`, less
    everything about labels. ``means``/``stds`` are computed from the training images when left out.
    """

    def __init__(
        self,
        batch_size: int = 8,
        num_workers: int = 0,
        train_data_root: str | Path | None = None,
        val_data_root: str | Path | None = None,
        test_data_root: str | Path | None = None,
        predict_data_root: str | Path | None = None,
        img_grep: str = "*",
        means: list[float] | str | None = None,
        stds: list[float] | str | None = None,
        dataset_bands: list[Band] | None = None,
        output_bands: list[Band] | None = None,
        constant_scale: float = 1.0,
        train_transform: list[Any] | None = None,
        no_data_replace: float | None = None,
        chip_size: int | list[int] | None = None,
        pad_to_multiple: int | None = None,
        drop_last: bool = True,
        stats_cache_dir: str | None = None,
    ) -> None:
        super().__init__(
            num_classes=1,
            batch_size=batch_size,
            num_workers=num_workers,
            train_data_root=train_data_root,
            val_data_root=val_data_root,
            test_data_root=test_data_root,
            predict_data_root=predict_data_root,
            img_grep=img_grep,
            means=means,
            stds=stds,
            dataset_bands=dataset_bands,
            output_bands=output_bands,
            constant_scale=constant_scale,
            train_transform=train_transform,
            no_data_replace=no_data_replace,
            chip_size=chip_size,
            pad_to_multiple=pad_to_multiple,
            drop_last=drop_last,
            stats_cache_dir=stats_cache_dir,
        )
        self.num_classes = None  # type: ignore[assignment]

    def resolve_class_names(self) -> list[str] | None:
        return None

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        args = super().dataset_arguments(split)
        args.update(num_classes=1, labels_file=None, with_labels=False, split=None)
        return args


__all__ = ["GenericNonGeoImageDataModule"]
