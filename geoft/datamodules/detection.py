"""GenericObjectDetectionDataModule: object detection / instance segmentation from GeoTIFF chips and
GeoJSON/GeoPackage, COCO JSON or YOLO labels (see :mod:`geoft.datasets.detection`).

Batches: ``image`` ``[B, C, H, W]`` normalised with per-band means/stds (given, or computed from the
training images and cached); ``boxes``, ``labels`` (and ``masks``) as lists, one entry per image.
Augmentations: ``hflip`` and ``vflip`` (each image flipped with probability 0.5, its boxes and masks
with it); other augmentations would have to move the boxes too, so they are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from geoft.datamodules.arguments import LoaderArguments, SplitArguments
from geoft.datamodules.base import GenericDataModuleBase
from geoft.datamodules.transforms import BatchTransform
from geoft.datasets.annotations import LabelFormat
from geoft.datasets.classes import check_class_names
from geoft.datasets.detection import GenericObjectDetectionDataset, collate_detection
from geoft.datasets.reader import Band
from geoft.errors import ConfigError
from geoft.task_kinds import TaskKind

FLIPS = {"hflip": -1, "vflip": -2, "RandomHorizontalFlip": -1, "RandomVerticalFlip": -2}


def _flip_dims(spec: list[Any] | None, split: str) -> list[int]:
    dims = []
    for item in spec or []:
        name = item.get("class_path", "").rsplit(".", 1)[-1] if isinstance(item, dict) else str(item)
        if name not in FLIPS:
            raise ConfigError(
                f"{split}_transform: {item!r} is not supported for object detection",
                hint="use hflip and/or vflip (boxes and masks are flipped with the image)",
            )
        dims.append(FLIPS[name])
    return dims


class DetectionBatchTransform(nn.Module):
    """Normalise the images, then flip each image (and its boxes and masks) at random along ``dims``."""

    def __init__(self, normalise: BatchTransform, dims: list[int]) -> None:
        super().__init__()
        self.normalise = normalise
        self.dims = dims

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        image = self.normalise.normalize(batch["image"].float())
        for dim in self.dims:
            flip = torch.rand(image.shape[0]) < 0.5
            for i in torch.nonzero(flip).flatten().tolist():
                image[i] = image[i].flip(dim)
                if "boxes" in batch:
                    batch["boxes"][i] = _flip_boxes(batch["boxes"][i], image.shape[dim], dim)
                if "masks" in batch:
                    batch["masks"][i] = batch["masks"][i].flip(dim)
        batch["image"] = image
        return batch


def _flip_boxes(boxes: Tensor, size: int, dim: int) -> Tensor:
    lo, hi = (0, 2) if dim == -1 else (1, 3)
    out = boxes.clone()
    out[:, lo], out[:, hi] = size - boxes[:, hi], size - boxes[:, lo]
    return out


@dataclass(eq=False, repr=False, kw_only=True)
class GenericObjectDetectionDataModule(SplitArguments, LoaderArguments, GenericDataModuleBase):
    """Detection chips per split.

    Args:
        num_classes: object classes (no background class).
        label_grep: glob pattern of the label files; images and labels pair by the wildcard part of the name.
        train_label_data_root: label folder, or one COCO JSON file (default: the image folder).
        val_label_data_root: the same for the validation split.
        test_label_data_root: the same for the test split.
        label_format: ``auto``, ``vector`` (GeoJSON/GeoPackage...), ``coco`` or ``yolo``.
        class_field: attribute of vector labels holding the class (index or name); None: all class 0.
        return_masks: instance masks from the polygons (needed by ``mask-rcnn``).
        min_box_size: objects cut by the chip border to thinner than this (pixels) are dropped.
        allow_missing_labels: chips without a label file count as empty images.
        dataset_bands: bands of the files, in order.
        output_bands: bands the model reads, in order (default: all).
        constant_scale: multiply raw values by this.
        no_data_replace: value for nodata pixels.
        rgb_indices: positions of red, green, blue among the output bands (for previews).
        class_names: one name per class.

    ``train_transform``/``val_transform``/``test_transform`` take ``hflip`` / ``vflip`` only (boxes and
    masks are flipped with the image); the loading and split arguments are those of the other generic
    datamodules.
    """

    target_kind = TaskKind.CLASSIFICATION  # the base's image-only normalisation; targets are moved here
    dataset_class = GenericObjectDetectionDataset
    # read by the base class; detection reads single-date images with all their bands
    temporal_order = "channel_major"
    predict_dataset_bands = None
    predict_output_bands = None

    num_classes: int
    batch_size: int = 4
    img_grep: str = "*.tif"
    label_grep: str = "*.geojson"
    train_label_data_root: str | Path | None = None
    val_label_data_root: str | Path | None = None
    test_label_data_root: str | Path | None = None
    label_format: LabelFormat = "auto"
    class_field: str | None = None
    return_masks: bool = False
    min_box_size: float = 1.0
    allow_missing_labels: bool = False
    dataset_bands: list[Band] | None = None
    output_bands: list[Band] | None = None
    constant_scale: float = 1.0
    no_data_replace: float | None = None
    rgb_indices: list[int] | None = None
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        self._flips = {
            "train": _flip_dims(self.train_transform, "train"),
            "val": _flip_dims(self.val_transform, "val"),
            "test": _flip_dims(self.test_transform, "test"),
            "predict": [],
        }
        # flips move boxes too: they run in DetectionBatchTransform, not in the base's augmentations
        self.train_transform = self.val_transform = self.test_transform = None
        super().__post_init__()
        check_class_names(self.num_classes, self.class_names)
        self.check_roots()
        self.collate_fn = collate_detection

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        predict = split == "predict"
        names = (
            "label_grep", "num_classes", "class_names", "label_format", "class_field", "return_masks",
            "min_box_size", "allow_missing_labels", "ignore_split_file_extensions", "allow_substring_split_file",
            "dataset_bands", "output_bands", "constant_scale", "no_data_replace", "rgb_indices",
        )  # fmt: skip
        return {
            **{name: getattr(self, name) for name in names},
            "image_grep": self.img_grep,
            "data_root": self.data_root(split),
            "label_data_root": None if predict else getattr(self, f"{split}_label_data_root"),
            "split": None if predict else getattr(self, f"{split}_split"),
            "with_labels": not predict,
        }

    def batch_transform(self, split: str) -> Any:
        if split not in self._batch_transforms:
            means, stds = self.statistics()
            self._batch_transforms[split] = DetectionBatchTransform(
                BatchTransform(means, stds, (), "classification"), self._flips[split]
            )
        return self._batch_transforms[split]


# The reference's name for its generic detection datamodule, so its configs find one.
GenericNonGeoObjectDetectionDataModule = GenericObjectDetectionDataModule

__all__ = [
    "DetectionBatchTransform",
    "GenericNonGeoObjectDetectionDataModule",
    "GenericObjectDetectionDataModule",
]
