"""Generic datamodule for (multi-label) scene classification from folders of rasters.

Labels come from class sub-folders (``train/<class>/<image>``) or from a labels file per split
(``filename,label`` rows; several labels per row for ``multi_label``).
"""

# No ``from __future__ import annotations``: jsonargparse reads the dataclass field types as objects.
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoft.datamodules.arguments import LoaderArguments, RasterArguments, SplitArguments
from geoft.datamodules.base import GenericDataModuleBase
from geoft.datasets.classes import check_class_names
from geoft.datasets.classification import GenericNonGeoClassificationDataset
from geoft.task_kinds import TaskKind


@dataclass(eq=False, repr=False, kw_only=True)
class GenericNonGeoClassificationDataModule(
    RasterArguments, SplitArguments, LoaderArguments, GenericDataModuleBase
):
    """Scene classification: one ``label`` per image (int), or several (multi-hot, ``multi_label``).

    Args:
        num_classes: number of classes.
        train_labels_file: ``filename,label`` file of the training split; without labels files,
            the data roots hold one sub-folder per class (``img_grep`` then globs inside them).
        val_labels_file: ``filename,label`` file of the validation split.
        test_labels_file: ``filename,label`` file of the test split.
        class_names: class names in index order (default: from the training split's folders/file).
        multi_label: several labels per image.
    """

    target_kind = TaskKind.CLASSIFICATION
    dataset_class = GenericNonGeoClassificationDataset

    num_classes: int
    train_labels_file: str | Path | None = None
    val_labels_file: str | Path | None = None
    test_labels_file: str | Path | None = None
    class_names: list[str] | None = None
    multi_label: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_class_names(self.num_classes, self.class_names)
        self.check_roots()

    def resolve_class_names(self) -> list[str] | None:
        """Class names: given, or read from the training split (so every split uses one order)."""
        if self.class_names is None and self.train_data_root is not None:
            train = self.train_dataset if self.train_dataset is not None else self.build_dataset("train")
            self.class_names = train.class_names
        return self.class_names

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        if split != "train":
            self.resolve_class_names()
        args = super().dataset_arguments(split)
        args["labels_file"] = None if split == "predict" else getattr(self, f"{split}_labels_file")
        args["class_names"] = self.class_names
        return args

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.class_names is None and self.train_dataset is not None:
            self.class_names = self.train_dataset.class_names
