"""Generic datamodules for semantic segmentation and pixel-wise regression on folders of rasters.

Arguments follow the reference (TerraTorch) generic pixel-wise datamodule, plus geoft's additions:
name-stem pairing, optional means/stds (computed and cached), ``class_names``, ``ignore_index``,
``temporal_order``, ``time_grep``/``dates_file``/``use_metadata`` (dates), ``band_file_pattern``, ``chip_size`` and ``pad_to_multiple``. They are declared
once, in :mod:`geoft.datamodules.arguments`.
"""

# No ``from __future__ import annotations``: jsonargparse reads the dataclass field types as objects.
from dataclasses import dataclass
from typing import Any

from geoft.datamodules.arguments import LabelRasterArguments, LoaderArguments, RasterArguments, SplitArguments
from geoft.datamodules.base import GenericDataModuleBase
from geoft.datasets.classes import check_class_names
from geoft.datasets.regression import GenericNonGeoPixelwiseRegressionDataset
from geoft.datasets.segmentation import GenericNonGeoSegmentationDataset
from geoft.datasets.temporal import TemporalArguments
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind


class _PixelwiseDataModule(GenericDataModuleBase):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_roots()

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        args = super().dataset_arguments(split)
        args["label_data_root"] = None if split == "predict" else getattr(self, f"{split}_label_data_root")
        return args


@dataclass(eq=False, repr=False, kw_only=True)
class _PixelwiseArguments(
    TemporalArguments, LabelRasterArguments, RasterArguments, SplitArguments, LoaderArguments
):
    """The argument groups of the pixel-wise datamodules."""


@dataclass(eq=False, repr=False, kw_only=True)
class GenericNonGeoSegmentationDataModule(_PixelwiseArguments, _PixelwiseDataModule):
    """Semantic segmentation from folders of image rasters and label rasters paired by name.

    Args:
        num_classes: number of classes (label values ``0..num_classes-1``; others must be ``ignore_index``).
        class_names: names of the classes (for reports and the app).
        reduce_zero_label: labels are 1..N with 0 unknown (needs ``ignore_index``).
        no_label_replace: value for label nodata/NaN pixels (default: ``ignore_index``).
    """

    target_kind = TaskKind.SEGMENTATION
    dataset_class = GenericNonGeoSegmentationDataset

    num_classes: int
    class_names: list[str] | None = None
    reduce_zero_label: bool = False
    no_label_replace: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_class_names(self.num_classes, self.class_names)
        if self.reduce_zero_label and self.ignore_index is None:
            raise ConfigError("reduce_zero_label needs ignore_index (label 0 becomes 'unknown').")


@dataclass(eq=False, repr=False, kw_only=True)
class GenericNonGeoPixelwiseRegressionDataModule(_PixelwiseArguments, _PixelwiseDataModule):
    """Pixel-wise regression (one float target per pixel) from image and target rasters paired by name.

    Arguments as :class:`GenericNonGeoSegmentationDataModule`, without ``num_classes``,
    ``class_names`` and ``reduce_zero_label``. ``ignore_index`` marks target pixels to ignore (and
    fills padding and target nodata); without it, padded target pixels are NaN.

    Args:
        no_label_replace: value for target nodata/NaN pixels (default: ``ignore_index``).
    """

    target_kind = TaskKind.REGRESSION
    dataset_class = GenericNonGeoPixelwiseRegressionDataset

    no_label_replace: float | None = None
