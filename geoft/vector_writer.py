"""Detections as vector files in the image's CRS: GeoJSON and/or GeoPackage, one per input image.

Each feature has ``class`` (index), ``class_name``, ``score`` and a geometry in map coordinates: the box
as a rectangle, or with instance masks (Mask R-CNN) the mask's outline as a (Multi)Polygon. Images
without a CRS/transform get pixel coordinates and no CRS (said in a warning).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from affine import Affine
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from rasterio.features import shapes
from shapely.geometry import MultiPolygon, box, shape
from shapely.geometry.base import BaseGeometry

from geoft.errors import ConfigError

logger = logging.getLogger(__name__)
VECTOR_FORMATS = {"geojson": ("GeoJSON", ".geojson"), "gpkg": ("GPKG", ".gpkg")}


def mask_polygon(mask: np.ndarray, transform: Affine) -> BaseGeometry | None:
    """The outline of a boolean mask in the coordinates of ``transform`` (None for an empty mask)."""
    parts = [
        shape(geom) for geom, value in shapes(mask.astype(np.uint8), mask=mask, transform=transform) if value
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def detections_frame(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    crs: Any,
    transform: Any,
    class_names: Sequence[str] | None,
    masks: torch.Tensor | None = None,
) -> Any:
    """A GeoDataFrame of one image's detections (pixel boxes/masks put on the map through ``transform``)."""
    affine = Affine(*list(transform)[:6]) if transform is not None else Affine.identity()
    geometries: list[BaseGeometry] = []
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        outline = mask_polygon(masks[i].numpy().astype(bool), affine) if masks is not None else None
        if outline is None:
            (mx0, my0), (mx1, my1) = affine @ (x0, y0), affine @ (x1, y1)
            outline = box(min(mx0, mx1), min(my0, my1), max(mx0, mx1), max(my0, my1))
        geometries.append(outline)
    return geometries_frame(
        geometries, labels.tolist(), scores.tolist(), crs if transform is not None else None, class_names
    )


def geometries_frame(
    geometries: Sequence[BaseGeometry],
    labels: Sequence[int],
    scores: Sequence[float],
    crs: Any,
    class_names: Sequence[str] | None,
) -> Any:
    """A GeoDataFrame with ``class``, ``class_name``, ``score`` and the given map geometries."""
    import geopandas as gpd

    classes = [int(v) for v in labels]
    names = [class_names[k] if class_names and 0 <= k < len(class_names) else str(k) for k in classes]
    # typed columns, so a file without detections still has the fields (GeoPackage keeps a schema)
    data = {
        "class": pd.Series(classes, dtype="int64"),
        "class_name": pd.Series(names, dtype="string"),
        "score": pd.Series([float(s) for s in scores], dtype="float64"),
    }
    return gpd.GeoDataFrame(data, geometry=list(geometries), crs=crs)


def write_vectors(frame: Any, stem_path: Path, formats: Sequence[str]) -> list[Path]:
    """Write ``frame`` to ``stem_path`` + each format's suffix (replacing existing files)."""
    written = []
    stem_path.parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        driver, suffix = VECTOR_FORMATS[fmt]
        path = stem_path.with_name(stem_path.name + suffix)
        tmp = path.with_name(f".{path.name}.tmp{suffix}")
        tmp.unlink(missing_ok=True)
        frame.to_file(tmp, driver=driver, engine="pyogrio", layer="detections" if fmt == "gpkg" else None)
        tmp.replace(path)
        written.append(path)
    return written


class VectorPredictionWriter(BasePredictionWriter):
    """Write ``ObjectDetectionTask.predict_step`` outputs as ``<stem><suffix>.geojson`` / ``.gpkg``.

    Args:
        output_dir: folder for the files (created).
        formats: ``geojson`` and/or ``gpkg``.
        class_names: names written in ``class_name`` (default: the task's).
        suffix: appended to the input file's stem.
    """

    def __init__(
        self,
        output_dir: str | Path,
        formats: Sequence[str] = ("geojson", "gpkg"),
        class_names: Sequence[str] | None = None,
        suffix: str = "_detections",
    ) -> None:
        super().__init__(write_interval="batch")
        unknown = [f for f in formats if f not in VECTOR_FORMATS]
        if unknown or not formats:
            raise ConfigError(f"unknown vector formats {unknown}; choose from {list(VECTOR_FORMATS)}")
        self.output_dir = Path(output_dir)
        self.formats = tuple(formats)
        self.class_names = list(class_names) if class_names is not None else None
        self.suffix = suffix
        self.written: list[Path] = []

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if not isinstance(prediction, dict) or "boxes" not in prediction:
            raise ConfigError(
                f"{type(pl_module).__name__}.predict_step returned no 'boxes'; the vector writer is for detection"
            )
        names = self.class_names or getattr(pl_module, "class_names", None)
        size = len(prediction["boxes"])
        filenames = prediction.get("filename") or [None] * size
        crs_list = prediction.get("crs") or [None] * size
        transforms = prediction.get("transform") or [None] * size
        masks = prediction.get("masks")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for i in range(size):
            name = filenames[i]
            stem = Path(name).stem if name else f"batch{batch_idx}_rank{trainer.global_rank}_{i}"
            if transforms[i] is None or crs_list[i] is None:
                warnings.warn(
                    f"{name or stem} is not georeferenced: detections are written in pixels", stacklevel=2
                )
            frame = detections_frame(
                prediction["boxes"][i], prediction["labels"][i], prediction["scores"][i],
                crs_list[i], transforms[i], names, masks[i] if masks is not None else None,
            )  # fmt: skip
            self.written += write_vectors(frame, self.output_dir / f"{stem}{self.suffix}", self.formats)


__all__ = [
    "VECTOR_FORMATS",
    "VectorPredictionWriter",
    "detections_frame",
    "geometries_frame",
    "mask_polygon",
    "write_vectors",
]
