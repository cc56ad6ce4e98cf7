"""Georeferenced chips with known objects (bright rectangles on noise), for tests, docs and demos.

Class ``k`` objects are bright in band ``k % bands``, so a detector can tell classes apart. Labels are
written as GeoJSON (polygons in map coordinates), YOLO txt and one COCO JSON, all from one truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

ORIGIN = (500000.0, 5200000.0)  # UTM 32N, metres
PIXEL_SIZE = 10.0
CRS = "EPSG:32632"


@dataclass(frozen=True)
class ChipTruth:
    image: Path
    boxes: list[tuple[int, int, int, int]]  # x0, y0, x1, y1 pixels (exclusive ends)
    labels: list[int]
    transform: tuple[float, ...]


def _place(
    rng: np.random.Generator, size: int, count: int, low: int, high: int
) -> list[tuple[int, int, int, int]]:
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(200):
        if len(boxes) == count:
            break
        w, h = (int(v) for v in rng.integers(low, high + 1, 2))
        x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        cand = (x0, y0, x0 + w, y0 + h)
        if all(
            cand[2] + 2 <= b[0] or b[2] + 2 <= cand[0] or cand[3] + 2 <= b[1] or b[3] + 2 <= cand[1]
            for b in boxes
        ):
            boxes.append(cand)
    return boxes


def generate_detection_chips(
    root: str | Path,
    n: int = 8,
    size: int = 64,
    bands: int = 3,
    num_classes: int = 1,
    max_objects: int = 3,
    object_size: tuple[int, int] = (8, 20),
    empty_every: int = 0,
    seed: int = 0,
) -> list[ChipTruth]:
    """Write ``n`` chips ``chip_XXX.tif`` with ``chip_XXX.geojson`` and ``chip_XXX.txt`` (YOLO) into
    ``root/images``, ``root/labels`` (GeoJSON) and ``root/yolo``, plus ``root/coco.json``; every
    ``empty_every``-th chip has no object. Returns the truth per chip."""
    root = Path(root)
    for sub in ("images", "labels", "yolo"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truths: list[ChipTruth] = []
    coco: dict[str, list[dict[str, object]]] = {
        "images": [], "annotations": [], "categories": [{"id": k + 1, "name": f"class{k}"} for k in range(num_classes)]
    }  # fmt: skip
    for i in range(n):
        west, north = ORIGIN[0] + i * size * PIXEL_SIZE, ORIGIN[1]
        transform = from_origin(west, north, PIXEL_SIZE, PIXEL_SIZE)
        image = rng.normal(0.2, 0.05, (bands, size, size)).astype(np.float32)
        count = (
            0 if empty_every and i % empty_every == empty_every - 1 else int(rng.integers(1, max_objects + 1))
        )
        boxes = _place(rng, size, count, *object_size)
        labels = [int(rng.integers(0, num_classes)) for _ in boxes]
        for (x0, y0, x1, y1), k in zip(boxes, labels, strict=True):
            image[:, y0:y1, x0:x1] += 0.3
            image[k % bands, y0:y1, x0:x1] += 0.6
        path = root / "images" / f"chip_{i:03d}.tif"
        profile = {"driver": "GTiff", "width": size, "height": size, "count": bands, "dtype": "float32"}
        with rasterio.open(path, "w", crs=CRS, transform=transform, **profile) as dst:
            dst.write(image)
        features = []
        yolo = []
        for (x0, y0, x1, y1), k in zip(boxes, labels, strict=True):
            (mx0, my0), (mx1, my1) = transform @ (x0, y0), transform @ (x1, y1)
            ring = [[mx0, my0], [mx1, my0], [mx1, my1], [mx0, my1], [mx0, my0]]
            geometry = {"type": "Polygon", "coordinates": [ring]}
            features.append({"type": "Feature", "properties": {"class": k}, "geometry": geometry})
            cx, cy, w, h = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size
            yolo.append(f"{k} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
            coco["annotations"].append(
                {"id": len(coco["annotations"]) + 1, "image_id": i + 1, "category_id": k + 1,
                 "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
                 "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]}
            )  # fmt: skip
        collection = {
            "type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32632"}},
            "features": features,
        }
        (root / "labels" / f"chip_{i:03d}.geojson").write_text(json.dumps(collection))
        (root / "yolo" / f"chip_{i:03d}.txt").write_text("\n".join(yolo) + ("\n" if yolo else ""))
        coco["images"].append({"id": i + 1, "file_name": path.name, "width": size, "height": size})
        truths.append(ChipTruth(path, boxes, labels, tuple(transform)[:6]))
    (root / "coco.json").write_text(json.dumps(coco))
    return truths


__all__ = ["CRS", "ChipTruth", "generate_detection_chips"]
