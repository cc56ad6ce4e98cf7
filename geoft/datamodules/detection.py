"""GenericObjectDetectionDataModule: object detection / instance segmentation from GeoTIFF chips and
GeoJSON/GeoPackage, COCO JSON or YOLO labels (see :mod:`geoft.datasets.detection`).

Batches: ``image`` ``[B, C, H, W]`` normalised with per-band means/stds (given, or computed from the
training images and cached); ``boxes``, ``labels`` (and ``masks``) as lists, one entry per image.
Augmentations: ``hflip`` and ``vflip`` (each image flipped with probability 0.5, its boxes and masks
with it); other augmentations would have to move the boxes too, so they are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from geoft.datamodules.base import GenericDataModuleBase
from geoft.datamodules.transforms import BatchTransform
from geoft.datasets.annotations import LabelFormat
from geoft.datasets.classes import check_class_names
from geoft.datasets.detection import GenericObjectDetectionDataset, collate_detection
from geoft.datasets.reader import Band
from geoft.errors import ConfigError

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


class GenericObjectDetectionDataModule(GenericDataModuleBase):
    """Detection chips per split.

    Args:
        num_classes: object classes (no background class).
        batch_size, num_workers: data loading.
        train_data_root, val_data_root, test_data_root, predict_data_root: image folders (or files).
        train_label_data_root, val_label_data_root, test_label_data_root: label folders, or one COCO JSON
            file (default: the image folder).
        img_grep, label_grep: glob patterns; images and labels pair by the wildcard part of the name.
        label_format: ``auto``, ``vector`` (GeoJSON/GeoPackage...), ``coco`` or ``yolo``.
        class_field: attribute of vector labels holding the class (index or name); None: all class 0.
        return_masks: instance masks from the polygons (needed by ``mask-rcnn``).
        min_box_size: objects cut by the chip border to thinner than this (pixels) are dropped.
        allow_missing_labels: chips without a label file count as empty images.
        train_split, val_split, test_split, ignore_split_file_extensions, allow_substring_split_file:
            split files.
        means, stds: per output band or a file; None: computed from the training images and cached.
        dataset_bands, output_bands, constant_scale, no_data_replace, rgb_indices: image reading.
        train_transform, val_transform, test_transform: ``hflip`` / ``vflip``.
        class_names: one name per class.
        drop_last, pin_memory, check_stackability, stats_cache_dir, stats_max_samples: as for the other
            generic datamodules.
    """

    target_kind = "classification"  # the base's image-only normalisation; targets are moved here

    def __init__(
        self,
        num_classes: int,
        batch_size: int = 4,
        num_workers: int = 0,
        train_data_root: str | Path | None = None,
        val_data_root: str | Path | None = None,
        test_data_root: str | Path | None = None,
        predict_data_root: str | Path | None = None,
        img_grep: str = "*.tif",
        label_grep: str = "*.geojson",
        train_label_data_root: str | Path | None = None,
        val_label_data_root: str | Path | None = None,
        test_label_data_root: str | Path | None = None,
        label_format: LabelFormat = "auto",
        class_field: str | None = None,
        return_masks: bool = False,
        min_box_size: float = 1.0,
        allow_missing_labels: bool = False,
        train_split: str | Path | None = None,
        val_split: str | Path | None = None,
        test_split: str | Path | None = None,
        ignore_split_file_extensions: bool = True,
        allow_substring_split_file: bool = True,
        means: list[float] | str | None = None,
        stds: list[float] | str | None = None,
        dataset_bands: list[Band] | None = None,
        output_bands: list[Band] | None = None,
        constant_scale: float = 1.0,
        no_data_replace: float | None = None,
        rgb_indices: list[int] | None = None,
        train_transform: list[Any] | None = None,
        val_transform: list[Any] | None = None,
        test_transform: list[Any] | None = None,
        class_names: list[str] | None = None,
        drop_last: bool = True,
        pin_memory: bool = False,
        check_stackability: bool = True,
        stats_cache_dir: str | None = None,
        stats_max_samples: int | None = None,
    ) -> None:
        self._flips = {
            "train": _flip_dims(train_transform, "train"),
            "val": _flip_dims(val_transform, "val"),
            "test": _flip_dims(test_transform, "test"),
            "predict": [],
        }
        super().__init__(
            GenericObjectDetectionDataset, batch_size, num_workers, means, stds, None, None, None,
            drop_last, pin_memory, check_stackability, stats_cache_dir, stats_max_samples, None,
        )  # fmt: skip
        check_class_names(num_classes, class_names)
        self.collate_fn = collate_detection
        self.num_classes, self.class_names = num_classes, class_names
        self.roots = {
            "train": train_data_root, "val": val_data_root, "test": test_data_root, "predict": predict_data_root
        }  # fmt: skip
        self.label_roots = {
            "train": train_label_data_root,
            "val": val_label_data_root,
            "test": test_label_data_root,
        }
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        if all(r is None for r in self.roots.values()):
            raise ConfigError(
                "No data root is configured: set train_data_root (and val/test) or predict_data_root."
            )
        self.options: dict[str, Any] = {
            "image_grep": img_grep,
            "label_grep": label_grep,
            "num_classes": num_classes,
            "class_names": class_names,
            "label_format": label_format,
            "class_field": class_field,
            "return_masks": return_masks,
            "min_box_size": min_box_size,
            "allow_missing_labels": allow_missing_labels,
            "ignore_split_file_extensions": ignore_split_file_extensions,
            "allow_substring_split_file": allow_substring_split_file,
            "dataset_bands": dataset_bands,
            "output_bands": output_bands,
            "constant_scale": constant_scale,
            "no_data_replace": no_data_replace,
            "rgb_indices": rgb_indices,
        }
        self.dataset_bands, self.output_bands = dataset_bands, output_bands

    def data_root(self, split: str) -> Any:
        return self.roots[split]

    def dataset_arguments(self, split: str) -> dict[str, Any]:
        predict = split == "predict"
        return {
            **self.options,
            "data_root": self.roots[split],
            "label_data_root": None if predict else self.label_roots[split],
            "split": None if predict else self.splits[split],
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
