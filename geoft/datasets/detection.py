"""GenericObjectDetectionDataset: GeoTIFF chips with object annotations, paired by name stem.

Labels per chip are a GeoJSON/GeoPackage (any GDAL/OGR vector file; polygons in map coordinates, put on
the chip through its transform, reprojected from the file's CRS when it differs) or a YOLO ``.txt``; or one
COCO JSON for all chips (``label_data_root`` is that file; images matched by file-name stem). A chip
whose label file lists no object is an empty image (all background); ``allow_missing_labels`` also makes
chips without a label file empty images. Problems are found when the dataset is built, each naming its
file (see :mod:`geoft.datasets.annotations`).

Samples: ``image`` float32 ``[C, H, W]``, ``boxes`` ``[N, 4]`` xyxy pixels, ``labels`` ``[N]`` int64,
``masks`` ``[N, H, W]`` uint8 with ``return_masks``, and ``filename``, ``crs``, ``transform``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from affine import Affine
from rasterio.features import rasterize
from torchgeo.datasets import NonGeoDataset

from geoft.datasets.annotations import (
    LABEL_FORMATS,
    Annotations,
    ClassMap,
    CocoFile,
    LabelFormat,
    PixelObject,
    detect_format,
    read_vector,
    read_yolo,
)
from geoft.datasets.pairing import filter_by_split, find_files, keyed, pair_by_key
from geoft.datasets.pixelwise import warn_not_georeferenced
from geoft.datasets.problems import DataProblem, problem_from_error, raise_if_errors
from geoft.datasets.reader import Band, ImageReader, SampleHeader, default_rgb_indices
from geoft.errors import ConfigError, DataError


@dataclass(frozen=True)
class DetectionRecord:
    """One chip: name key, image file, annotation file (None: empty image), header and its objects."""

    key: str
    image: Path
    label: Path | None
    header: SampleHeader
    objects: tuple[PixelObject, ...]


class GenericObjectDetectionDataset(NonGeoDataset):
    """Chips and their objects.

    Args:
        data_root: folder of images (or one image file).
        label_data_root: folder of label files, or one COCO JSON file (default: ``data_root``).
        image_grep, label_grep: glob patterns pairing images and labels by the wildcard part of the name.
        num_classes: object classes (no background).
        class_names: names of the classes; vector/COCO class values may be these names.
        label_format: ``auto`` (by extension; ``.json`` is read to tell COCO from GeoJSON), ``vector``,
            ``coco`` or ``yolo``.
        class_field: attribute column of vector labels holding the class (index or name); None: every
            object is class 0.
        return_masks: also return instance masks rasterised from the polygons (Mask R-CNN); objects
            without a polygon are then a problem.
        min_box_size: objects clipped at the chip border to less than this many pixels wide or high are
            dropped.
        allow_missing_labels: chips without a label file are empty images instead of a problem.
        split, ignore_split_file_extensions, allow_substring_split_file: a split file of names to keep.
        dataset_bands, output_bands, constant_scale, no_data_replace: see
            :class:`~geoft.datasets.reader.ImageReader`.
        rgb_indices: positions of red, green, blue among the output bands (for previews).
        with_labels: False to read images only (prediction).
        strict: raise one DataError listing every problem; False keeps them in ``problems`` and drops the
            bad chips (dataset validation).
        name: what to call the dataset in messages.
    """

    pixel_targets = False  # statistics read only the images

    def __init__(
        self,
        data_root: str | Path,
        num_classes: int,
        label_data_root: str | Path | None = None,
        image_grep: str = "*.tif",
        label_grep: str = "*.geojson",
        class_names: list[str] | None = None,
        label_format: LabelFormat = "auto",
        class_field: str | None = None,
        return_masks: bool = False,
        min_box_size: float = 1.0,
        allow_missing_labels: bool = False,
        split: str | Path | None = None,
        ignore_split_file_extensions: bool = True,
        allow_substring_split_file: bool = True,
        dataset_bands: list[Band] | None = None,
        output_bands: list[Band] | None = None,
        constant_scale: float = 1.0,
        no_data_replace: float | None = None,
        rgb_indices: list[int] | None = None,
        with_labels: bool = True,
        strict: bool = True,
        name: str = "dataset",
    ) -> None:
        if label_format not in LABEL_FORMATS:
            raise ConfigError(f"label_format must be one of {LABEL_FORMATS}, not {label_format!r}.")
        if num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1 (object classes), not {num_classes}.")
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(f"class_names has {len(class_names)} names but num_classes is {num_classes}.")
        if min_box_size <= 0:
            raise ConfigError(f"min_box_size must be positive, not {min_box_size}.")
        self.reader = ImageReader(
            dataset_bands=None if dataset_bands is None else list(dataset_bands),
            output_bands=None if output_bands is None else list(output_bands),
            constant_scale=constant_scale,
            no_data_replace=no_data_replace,
        )
        self.data_root = Path(data_root)
        self.label_data_root = Path(label_data_root) if label_data_root is not None else self.data_root
        self.image_grep, self.label_grep = image_grep, label_grep
        self.classes = ClassMap(num_classes, tuple(class_names) if class_names else None)
        self.num_classes, self.class_names = num_classes, class_names
        self.label_format, self.class_field = label_format, class_field
        self.return_masks, self.min_box_size = return_masks, min_box_size
        self.allow_missing_labels, self.with_labels = allow_missing_labels, with_labels
        self.ignore_index = None
        self.name = name
        self.problems: list[DataProblem] = []
        self.dropped = 0
        self.samples = self._index(split, ignore_split_file_extensions, allow_substring_split_file)
        if strict:
            raise_if_errors(self.problems, f"Dataset {name!r} ({self.data_root})")
            if not self.samples:
                raise DataError(f"Dataset {name!r} ({self.data_root}) has no samples.")
        self.rgb_indices = (
            rgb_indices
            if rgb_indices is not None
            else default_rgb_indices(self.reader.selected_bands, self.reader.num_channels())
        )

    # -- index -----------------------------------------------------------------------------------
    def _images(self, split: Any, ignore_ext: bool, allow_sub: bool) -> dict[str, Path]:
        files, problems = find_files(self.data_root, self.image_grep, "image", recursive=not self.with_labels)
        self.problems += problems
        images, problems = keyed(files, self.data_root, self.image_grep, "image")
        self.problems += problems
        if split is not None and images:
            images, problems = filter_by_split(images, split, ignore_ext, allow_sub)
            self.problems += problems
        return images

    def _coco(self) -> CocoFile | None:
        root = self.label_data_root
        if not (root.is_file() and (self.label_format == "coco" or detect_format(root) == "coco")):
            return None
        try:
            return CocoFile(root, self.classes)
        except (ValueError, OSError) as err:
            raise DataError(f"Cannot read COCO labels {root}: {err}") from err

    def _pairs(self, images: dict[str, Path], coco: CocoFile | None) -> list[tuple[str, Path, Path | None]]:
        if not self.with_labels:
            return [(k, p, None) for k, p in images.items()]
        if coco is not None:
            missing = [k for k, p in images.items() if p.stem not in coco.images]
            pairs = [(k, p, coco.path) for k, p in images.items() if p.stem in coco.images]
        else:
            files, problems = find_files(self.label_data_root, self.label_grep, "label")
            labels, more = keyed(files, self.label_data_root, self.label_grep, "label")
            pairs, paired = pair_by_key(images, labels, self.image_grep, self.label_grep)
            missing = [k for k in images if k not in labels]
            if not self.allow_missing_labels:
                self.problems += problems + more + paired
                return [(k, p, lab) for k, p, lab in pairs]
            self.problems += [p for p in problems + more + paired if p.code != "missing_label"]
        if missing and not self.allow_missing_labels:
            self.problems += [
                DataProblem(
                    "missing_label",
                    f"No annotation of image {images[k]} in {self.label_data_root}.",
                    str(images[k]),
                )
                for k in missing
            ]
        empty = [(k, images[k], None) for k in missing] if self.allow_missing_labels else []
        return sorted([*pairs, *empty])

    def _index(self, split: Any, ignore_ext: bool, allow_sub: bool) -> list[DetectionRecord]:
        images = self._images(split, ignore_ext, allow_sub)
        if not images:
            return []
        self.reader.adopt_band_names_from(list(images.values()))
        coco = self._coco() if self.with_labels else None
        records = []
        for key, image, label in self._pairs(images, coco):
            try:
                header = self.reader.header(image)
            except DataError as err:
                self.problems.append(problem_from_error(err, path=str(image)))
                continue
            found = self._annotations(image, label, header, coco)
            self.problems += found.problems
            self.dropped += found.dropped
            if not any(p.severity == "error" for p in found.problems):
                records.append(DetectionRecord(key, image, label, header, tuple(found.objects)))
        self.problems += warn_not_georeferenced(records, f"{self.name} ({self.data_root})")
        return records

    def _annotations(
        self, image: Path, label: Path | None, header: SampleHeader, coco: CocoFile | None
    ) -> Annotations:
        if label is None:
            return Annotations()
        kind = self.label_format if self.label_format != "auto" else detect_format(label)
        if coco is not None:
            found = coco.read(image.stem, header.shape, self.min_box_size)
        elif kind == "yolo":
            found = read_yolo(label, header.shape, self.classes, self.min_box_size)
        elif kind == "vector":
            transform = Affine(*header.transform) if header.transform is not None else None
            found = read_vector(
                label, transform, header.crs, header.shape, self.classes, self.class_field, self.min_box_size
            )
        else:
            raise ConfigError(
                f"{label} looks like COCO JSON; COCO labels are one file for all images",
                hint="set label_data_root to the COCO JSON file itself",
            )
        if self.return_masks:
            for obj in found.objects:
                if obj.polygon is None:
                    found.problems.append(
                        DataProblem(
                            "no_polygon",
                            f"{label}: an object (box {[round(v, 1) for v in obj.box]}) has no polygon, but "
                            "return_masks (mask-rcnn) needs instance outlines.",
                            str(label),
                        )
                    )
                    break
        return found

    # -- sizes -----------------------------------------------------------------------------------
    def shapes(self) -> dict[tuple[int, int], list[str]]:
        out: dict[tuple[int, int], list[str]] = {}
        for r in self.samples:
            out.setdefault(r.header.shape, []).append(str(r.image))
        return out

    @property
    def filenames(self) -> list[str]:
        return [str(r.image) for r in self.samples]

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def targets(self, record: DetectionRecord) -> dict[str, torch.Tensor]:
        """Boxes, labels (and masks) of ``record`` as tensors."""
        objects = record.objects
        boxes = torch.tensor([o.box for o in objects], dtype=torch.float32).reshape(-1, 4)
        out = {"boxes": boxes, "labels": torch.tensor([o.label for o in objects], dtype=torch.int64)}
        if self.return_masks:
            height, width = record.header.shape
            masks = np.zeros((len(objects), height, width), dtype=np.uint8)
            for i, obj in enumerate(objects):
                rasterize([(obj.polygon, 1)], out=masks[i], all_touched=False)
                if not masks[i].any():  # a sliver thinner than a pixel: keep the pixel under its centre
                    x0, y0, x1, y1 = obj.box
                    masks[i, min(int((y0 + y1) / 2), height - 1), min(int((x0 + x1) / 2), width - 1)] = 1
            out["masks"] = torch.from_numpy(masks)
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.samples[index]
        image, header = self.reader.read(record.image)
        if image.ndim != 3:
            raise DataError(f"{record.image}: detection needs [C, H, W] images, got shape {image.shape}.")
        sample: dict[str, Any] = {"image": torch.from_numpy(image)}
        if self.with_labels:
            sample.update(self.targets(record))
        sample["filename"] = str(record.image)
        sample["crs"] = header.crs
        sample["transform"] = header.transform
        return sample


def collate_detection(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the images; boxes, labels, masks and metadata stay lists (one entry per image)."""
    shapes = {tuple(s["image"].shape) for s in samples}
    if len(shapes) > 1:
        names = [f"{s.get('filename')} {tuple(s['image'].shape)}" for s in samples]
        raise DataError(
            "Cannot batch chips of different sizes: " + "; ".join(names[:6]),
            hint="use batch_size 1, or equal chips.",
        )
    batch: dict[str, Any] = {"image": torch.stack([s["image"] for s in samples])}
    for key in samples[0]:
        if key != "image":
            batch[key] = [s[key] for s in samples]
    return batch


__all__ = ["DetectionRecord", "GenericObjectDetectionDataset", "collate_detection"]
