"""Unlabeled images: a datamodule whose batches hold ``image`` (and its georeferencing) only, for
continued pre-training (:class:`~geoft.tasks.ReconstructionTask`) and embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geoft.datamodules.arguments import LoaderArguments, RasterArguments, SplitArguments
from geoft.datamodules.base import GenericDataModuleBase
from geoft.datasets.classification import GenericNonGeoClassificationDataset


@dataclass(eq=False, repr=False, kw_only=True)
class GenericNonGeoImageDataModule(RasterArguments, SplitArguments, LoaderArguments, GenericDataModuleBase):
    """Folders of rasters (searched recursively with ``img_grep``), no labels.

    Arguments as the other generic datamodules, less everything about labels. ``means``/``stds`` are
    computed from the training images when left out.
    """

    dataset_class = GenericNonGeoClassificationDataset

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_roots()

    def resolve_class_names(self) -> list[str] | None:
        return None

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        args = super().dataset_arguments(split)
        args.update(num_classes=1, labels_file=None, with_labels=False, split=None)
        return args


__all__ = ["GenericNonGeoImageDataModule"]
