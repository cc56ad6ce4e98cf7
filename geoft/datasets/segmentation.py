"""Generic semantic segmentation dataset: images + integer class masks, paired by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geoft.datasets.classes import check_class_names
from geoft.datasets.pixelwise import GenericPixelwiseDataset
from geoft.datasets.problems import FileDataError
from geoft.datasets.reader import Band, TemporalOrder
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


class GenericNonGeoSegmentationDataset(GenericPixelwiseDataset):
    """Images and class masks (``mask`` int64 ``[H, W]``).

    Args:
        num_classes: number of classes; mask values must be in ``[0, num_classes)`` or ``ignore_index``.
        class_names: a name per class (optional).
        reduce_zero_label: labels are 1..N with 0 = unknown: subtract 1 and map 0 to ``ignore_index``.
        others: see :class:`~geoft.datasets.pixelwise.GenericPixelwiseDataset`.
    """

    target_name = "mask"

    def __init__(
        self,
        data_root: str | Path,
        num_classes: int,
        label_data_root: str | Path | None = None,
        image_grep: str = "*",
        label_grep: str = "*",
        split: str | Path | None = None,
        ignore_split_file_extensions: bool = True,
        allow_substring_split_file: bool = True,
        rgb_indices: list[int] | None = None,
        dataset_bands: list[Band] | None = None,
        output_bands: list[Band] | None = None,
        band_file_pattern: str | None = None,
        class_names: list[str] | None = None,
        constant_scale: float = 1.0,
        no_data_replace: float | None = None,
        no_label_replace: int | None = None,
        expand_temporal_dimension: bool = False,
        temporal_order: TemporalOrder = "channel_major",
        reduce_zero_label: bool = False,
        ignore_index: int | None = None,
        chip_size: int | tuple[int, int] | None = None,
        pad_to_multiple: int | None = None,
        with_labels: bool = True,
        strict: bool = True,
        name: str = "dataset",
    ) -> None:
        if num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, not {num_classes}.")
        check_class_names(num_classes, class_names)
        if reduce_zero_label and ignore_index is None:
            raise ConfigError(
                "reduce_zero_label turns label 0 into 'unknown', which needs ignore_index.",
                hint="set ignore_index (e.g. -1).",
            )
        self.num_classes = num_classes
        self.class_names = class_names
        self.reduce_zero_label = reduce_zero_label
        super().__init__(
            data_root,
            label_data_root=label_data_root,
            image_grep=image_grep,
            label_grep=label_grep,
            split=split,
            ignore_split_file_extensions=ignore_split_file_extensions,
            allow_substring_split_file=allow_substring_split_file,
            rgb_indices=rgb_indices,
            dataset_bands=dataset_bands,
            output_bands=output_bands,
            band_file_pattern=band_file_pattern,
            constant_scale=constant_scale,
            no_data_replace=no_data_replace,
            no_label_replace=no_label_replace,
            expand_temporal_dimension=expand_temporal_dimension,
            temporal_order=temporal_order,
            ignore_index=ignore_index,
            chip_size=chip_size,
            pad_to_multiple=pad_to_multiple,
            with_labels=with_labels,
            strict=strict,
            name=name,
        )

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
