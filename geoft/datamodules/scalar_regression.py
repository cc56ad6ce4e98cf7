"""Generic datamodule for image-level regression (biomass, yield...): a labels file per split gives each
image one number (or ``num_outputs`` numbers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoft.datamodules.arguments import LoaderArguments, RasterArguments, SplitArguments
from geoft.datamodules.base import GenericDataModuleBase
from geoft.datasets.scalar_regression import GenericNonGeoScalarRegressionDataset
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind


@dataclass(eq=False, repr=False, kw_only=True)
class GenericNonGeoScalarRegressionDataModule(
    RasterArguments, SplitArguments, LoaderArguments, GenericDataModuleBase
):
    """Image-level regression: ``label`` float32 per image (``[num_outputs]`` when there are several).

    Args:
        train_labels_file: ``filename,value[,value...]`` file of the training split.
        val_labels_file: the same for the validation split.
        test_labels_file: the same for the test split (prediction reads images only).
        num_outputs: values per image.
    """

    target_kind = TaskKind.SCALAR_REGRESSION
    dataset_class = GenericNonGeoScalarRegressionDataset

    train_labels_file: str | Path | None = None
    val_labels_file: str | Path | None = None
    test_labels_file: str | Path | None = None
    num_outputs: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_outputs < 1:
            raise ConfigError(f"num_outputs must be at least 1, not {self.num_outputs}.")
        self.check_roots()

    def resolve_class_names(self) -> list[str] | None:
        return None

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        args = super().dataset_arguments(split)
        args["labels_file"] = None if split == "predict" else getattr(self, f"{split}_labels_file")
        return args


__all__ = ["GenericNonGeoScalarRegressionDataModule"]
