"""Detect objects on a GeoTIFF scene of any size, tile by tile, into one vector file in the scene's CRS.

Tiles of ``tile_size`` pixels overlap by ``overlap`` pixels and are read one at a time, so memory
depends on the tile size, not the scene (only the detections are kept: a few numbers, and an outline
per object for Mask R-CNN). Detections touching a tile border inside the scene are dropped: with an
overlap larger than the largest object, the neighbouring tile sees every such object whole. The rest
are merged across tiles by class-wise non-maximum suppression (torchvision's ``batched_nms``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from torchvision.ops import batched_nms

from geoft.errors import ConfigError, DataError
from geoft.io.scene import inference_autocast_dtype
from geoft.io.scene_inputs import normaliser
from geoft.tasks.tiled_inference import tile_starts
from geoft.vector_writer import VECTOR_FORMATS, geometries_frame, mask_polygon, write_vectors

EDGE_MARGIN = 1.0  # pixels: a box this close to an inner tile border counts as cut by it


@dataclass(frozen=True)
class SceneDetections:
    paths: list[Path]
    detections: int
    tiles: int
    height: int
    width: int


def _formats(dst: Path) -> tuple[Path, list[str]]:
    for fmt, (_, suffix) in VECTOR_FORMATS.items():
        if dst.name.lower().endswith(suffix):
            return dst.with_name(dst.name[: -len(suffix)]), [fmt]
    raise ConfigError(
        f"{dst}: detections are written as .geojson or .gpkg", hint="name the output e.g. scene.gpkg"
    )


def _cut(boxes: torch.Tensor, r0: int, c0: int, h: int, w: int, height: int, width: int) -> torch.Tensor:
    """Boxes (tile pixels) touching a tile border that is not the scene border."""
    cut = torch.zeros(len(boxes), dtype=torch.bool)
    if c0 > 0:
        cut |= boxes[:, 0] <= EDGE_MARGIN
    if r0 > 0:
        cut |= boxes[:, 1] <= EDGE_MARGIN
    if c0 + w < width:
        cut |= boxes[:, 2] >= w - EDGE_MARGIN
    if r0 + h < height:
        cut |= boxes[:, 3] >= h - EDGE_MARGIN
    return cut


def predict_scene_detections(
    task: torch.nn.Module,
    src_path: str | Path,
    dst_path: str | Path,
    *,
    means: Sequence[float] | None = None,
    stds: Sequence[float] | None = None,
    bands: Sequence[int] | None = None,
    constant_scale: float = 1.0,
    no_data_replace: float | None = 0.0,
    tile_size: int = 512,
    overlap: int = 64,
    device: str | torch.device | None = None,
    precision: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SceneDetections:
    """Run an :class:`~geoft.tasks.detection.ObjectDetectionTask` over ``src_path``; write ``dst_path``
    (``.geojson`` or ``.gpkg``) with ``class``, ``class_name``, ``score`` per object, in the scene's CRS.

    ``score_threshold`` and ``iou_threshold`` are the task's; ``means``/``stds`` the datamodule's.
    """
    if getattr(task, "task_kind", None) != "object_detection":
        raise ConfigError(f"predict_scene_detections needs an ObjectDetectionTask, got {type(task).__name__}")
    if not 0 <= overlap < tile_size:
        raise ConfigError(f"overlap must be in [0, tile_size), got overlap={overlap}, tile_size={tile_size}")
    stem, formats = _formats(Path(dst_path))
    device = torch.device(device) if device is not None else next(task.parameters()).device
    task = task.to(device).eval()
    autocast = inference_autocast_dtype(precision, device)
    score_min, iou = float(task.hparams["score_threshold"]), float(task.hparams["iou_threshold"])
    boxes_all, scores_all, labels_all, outlines = [], [], [], []
    with rasterio.open(src_path) as src:
        height, width = src.height, src.width
        indexes = list(bands) if bands else list(range(1, src.count + 1))
        if not set(indexes) <= set(range(1, src.count + 1)):
            raise ConfigError(f"bands {list(indexes)} are not all in 1..{src.count} of {src_path}")
        normalise = normaliser(
            (list(means), list(stds)) if means is not None and stds is not None else None, len(indexes)
        )
        rows, cols = (
            tile_starts(height, tile_size, tile_size - overlap, 0),
            tile_starts(width, tile_size, tile_size - overlap, 0),
        )
        total, done = len(rows) * len(cols), 0
        for r0 in rows:
            for c0 in cols:
                window = Window(c0, r0, min(tile_size, width - c0), min(tile_size, height - r0))
                data = src.read(indexes, window=window, masked=True).astype(np.float32)
                if np.ma.getmaskarray(data).all():
                    done += 1
                    continue
                if np.ma.is_masked(data) and no_data_replace is None:
                    raise DataError(
                        f"{src_path}: nodata pixels in window {window}", hint="set no_data_replace"
                    )
                pixels = torch.from_numpy(np.ma.filled(data, no_data_replace or 0.0) * constant_scale)
                x = normalise(pixels.to(device))[None]
                with (
                    torch.no_grad(),
                    torch.autocast(
                        device.type, dtype=autocast or torch.float32, enabled=autocast is not None
                    ),
                ):
                    det = task.detect(x)[0]
                keep = (det["scores"] > score_min) & ~_cut(
                    det["boxes"].cpu(), r0, c0, window.height, window.width, height, width
                )
                boxes = det["boxes"].float().cpu()[keep]
                tile_transform = src.window_transform(window)
                if "masks" in det:
                    for mask in det["masks"].cpu()[keep]:
                        outlines.append(mask_polygon(mask.numpy().astype(bool), tile_transform))
                boxes_all.append(boxes + torch.tensor([c0, r0, c0, r0], dtype=torch.float32))
                scores_all.append(det["scores"].float().cpu()[keep])
                labels_all.append(det["labels"].cpu()[keep])
                done += 1
                if progress is not None:
                    progress(done, total)
        crs, transform = src.crs, src.transform
    boxes = torch.cat(boxes_all) if boxes_all else torch.zeros(0, 4)
    scores = torch.cat(scores_all) if scores_all else torch.zeros(0)
    labels = torch.cat(labels_all) if labels_all else torch.zeros(0, dtype=torch.int64)
    order = batched_nms(boxes, scores, labels, iou).tolist()
    geometries: list[BaseGeometry] = []
    for i in order:
        outline = outlines[i] if outlines else None
        if outline is None:
            x0, y0, x1, y1 = boxes[i].tolist()
            (mx0, my0), (mx1, my1) = transform @ (x0, y0), transform @ (x1, y1)
            outline = box(min(mx0, mx1), min(my0, my1), max(mx0, mx1), max(my0, my1))
        geometries.append(outline)
    frame = geometries_frame(
        geometries, labels[order].tolist(), scores[order].tolist(), crs, getattr(task, "class_names", None)
    )
    paths = write_vectors(frame, stem, formats)
    return SceneDetections(paths, len(order), total, height, width)


__all__ = ["SceneDetections", "predict_scene_detections"]
