"""Generic semantic segmentation dataset: images + integer class masks, paired by name."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import numpy as np

from geoft.datasets.classes import check_class_names
from geoft.datasets.pixelwise import GenericPixelwiseDataset
from geoft.datasets.problems import FileDataError
from geoft.errors import ConfigError


def check_class_values(
    mask: np.ndarray, num_classes: int, ignore_index: int | None, path: Path | str
) -> None:
    """Raise :class:`FileDataError` when a mask holds values outside ``[0, num_classes)`` (other than ignore)."""
    bad = (mask < 0) | (mask >= num_classes)
    if ignore_index is not None:
        bad &= mask != ignore_index
    if bad.any():
        values = np.unique(mask[bad])
        shown = ", ".join(str(int(v)) for v in values[:10]) + (" ..." if len(values) > 10 else "")
        ignore = f" (ignore_index={ignore_index})" if ignore_index is not None else " (no ignore_index set)"
        raise FileDataError(
            "label_out_of_range",
            f"Label {path} has values {shown} outside the classes 0..{num_classes - 1}{ignore}.",
            str(path),
            hint="fix num_classes, set ignore_index for 'unknown' pixels, or use reduce_zero_label for labels 1..N.",
        )


@dataclass(eq=False, repr=False)
class GenericNonGeoSegmentationDataset(GenericPixelwiseDataset):
    """Images and class masks (``mask`` int64 ``[H, W]``).

    Args:
        num_classes: number of classes; mask values must be in ``[0, num_classes)`` or ``ignore_index``.
        class_names: a name per class (optional).
        reduce_zero_label: labels are 1..N with 0 = unknown: subtract 1 and map 0 to ``ignore_index``.
        no_label_replace: class put where the label is nodata/NaN (default: ``ignore_index``).
        others: see :class:`~geoft.datasets.pixelwise.GenericPixelwiseDataset`.
    """

    target_name = "mask"

    num_classes: int
    _: KW_ONLY
    class_names: list[str] | None = None
    reduce_zero_label: bool = False
    no_label_replace: int | None = None

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, not {self.num_classes}.")
        check_class_names(self.num_classes, self.class_names)
        if self.reduce_zero_label and self.ignore_index is None:
            raise ConfigError(
                "reduce_zero_label turns label 0 into 'unknown', which needs ignore_index.",
                hint="set ignore_index (e.g. -1).",
            )
        super().__post_init__()

    def convert_target(self, data: np.ndarray, nodata: np.ndarray, path: Path) -> np.ndarray:
        values = self._fill_nodata_target(data, nodata, path)
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
                raise FileDataError(
                    "label_not_integer",
                    f"Label {path} holds non-integer class values (dtype {data.dtype}).",
                    str(path),
                    hint="segmentation labels must be integer class ids; is this a regression target?",
                )
        mask = values.astype(np.int64)
        if self.reduce_zero_label:
            assert self.ignore_index is not None
            unknown = (mask == 0) | (mask == self.ignore_index)
            mask = np.where(unknown, self.ignore_index, mask - 1)
        check_class_values(mask, self.num_classes, self.ignore_index, path)
        return mask
