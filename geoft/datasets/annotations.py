"""Object annotations read into pixel coordinates: GeoJSON/GeoPackage (map coordinates), COCO JSON, YOLO txt.

Every reader returns the chip's objects as :class:`PixelObject` (box ``x0, y0, x1, y1`` in pixels of the
chip, class index, polygon in pixels when the annotation has one) plus a list of
:class:`~geoft.datasets.problems.DataProblem` naming the file: bad geometries, objects entirely outside the
chip and unknown classes. Objects cut by the chip border are clipped to it; what is left thinner than
``min_box_size`` pixels is dropped (counted in :attr:`Annotations.dropped`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from affine import Affine
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from geoft.datasets.problems import DataProblem

LabelFormat = Literal["auto", "vector", "coco", "yolo"]
LABEL_FORMATS = ("auto", "vector", "coco", "yolo")
VECTOR_SUFFIXES = (".geojson", ".gpkg", ".shp", ".fgb", ".gml", ".kml")


@dataclass(frozen=True)
class PixelObject:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    label: int
    polygon: BaseGeometry | None = None  # in pixels, when the annotation is a polygon


@dataclass
class Annotations:
    objects: list[PixelObject] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)
    dropped: int = 0  # clipped to nothing (thinner than min_box_size) at the chip border


@dataclass(frozen=True)
class ClassMap:
    """How annotation class values become indices ``0..num_classes-1``: ints directly, names through
    ``class_names``."""

    num_classes: int
    class_names: tuple[str, ...] | None = None

    def index(self, value: Any) -> int | None:
        if isinstance(value, (bool, np.bool_)) or value is None:
            return None
        if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer()):
            index = int(value)
            return index if 0 <= index < self.num_classes else None
        text = str(value).strip()
        if self.class_names is not None and text in self.class_names:
            return self.class_names.index(text)
        if text.lstrip("-").isdigit():
            return self.index(int(text))
        return None

    def describe(self) -> str:
        names = f" or one of {list(self.class_names)}" if self.class_names else ""
        return f"0..{self.num_classes - 1}{names}"


def detect_format(path: Path) -> Literal["vector", "coco", "yolo"]:
    """The label format of ``path`` from its extension (a ``.json`` is read: COCO or GeoJSON)."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return "yolo"
    if suffix in VECTOR_SUFFIXES:
        return "vector"
    if suffix == ".json":
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
        return "vector" if '"FeatureCollection"' in head or '"Feature"' in head else "coco"
    return "vector"  # anything else GDAL/OGR may read


class _Clipper:
    """Turns pixel geometries into clipped :class:`PixelObject` and records what went wrong."""

    def __init__(self, path: Path, shape: tuple[int, int], min_box_size: float, out: Annotations) -> None:
        self.path, self.out, self.min = path, out, float(min_box_size)
        self.frame = box(0.0, 0.0, float(shape[1]), float(shape[0]))

    def problem(self, code: str, message: str) -> None:
        self.out.problems.append(DataProblem(code, f"{self.path}: {message}", str(self.path)))

    def add(self, geometry: BaseGeometry, label: int, what: str, polygonal: bool) -> None:
        if geometry.is_empty or not geometry.is_valid or not all(map(math.isfinite, geometry.bounds)):
            reason = "empty" if geometry.is_empty else shapely.is_valid_reason(geometry)
            self.problem("bad_geometry", f"{what} has an invalid geometry ({reason}).")
            return
        if not geometry.intersects(self.frame) or geometry.intersection(self.frame).area == 0:
            x0, y0, x1, y1 = geometry.bounds
            self.problem(
                "object_outside_image",
                f"{what} lies outside the image (pixels x {x0:.1f}..{x1:.1f}, y {y0:.1f}..{y1:.1f}; the image is "
                f"{self.frame.bounds[2]:.0f}x{self.frame.bounds[3]:.0f}); check its coordinates or CRS.",
            )
            return
        clipped = geometry.intersection(self.frame)
        x0, y0, x1, y1 = clipped.bounds
        if x1 - x0 < self.min or y1 - y0 < self.min:
            self.out.dropped += 1
            return
        polygon = None
        if polygonal:
            parts = [g for g in getattr(clipped, "geoms", [clipped]) if isinstance(g, Polygon) and g.area > 0]
            polygon = parts[0] if len(parts) == 1 else MultiPolygon(parts)
        self.out.objects.append(PixelObject((x0, y0, x1, y1), label, polygon))


def read_vector(
    path: Path,
    transform: Affine | None,
    crs: str | None,
    shape: tuple[int, int],
    classes: ClassMap,
    class_field: str | None,
    min_box_size: float = 1.0,
) -> Annotations:
    """Polygons (or boxes drawn as polygons) in map coordinates, from any file GDAL/OGR reads."""
    import geopandas as gpd
    from pyogrio.errors import DataSourceError

    out = Annotations()
    clip = _Clipper(path, shape, min_box_size, out)
    if transform is None or crs is None:
        clip.problem(
            "not_georeferenced",
            "vector labels are in map coordinates, but the image has no CRS/transform to place them.",
        )
        return out
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except (DataSourceError, OSError, ValueError) as err:
        clip.problem("corrupt_label", f"cannot read the vector file ({str(err).splitlines()[0]}).")
        return out
    if len(frame) and class_field is not None and class_field not in frame.columns:
        clip.problem(
            "missing_class_field", f"has no column {class_field!r} (columns: {list(frame.columns)[:10]})."
        )
        return out
    if frame.crs is None:
        frame = frame.set_crs(crs, allow_override=True)  # no CRS in the file: taken as the image's
    elif len(frame):
        frame = frame.to_crs(crs)
    inverse = ~transform
    coefficients = [inverse.a, inverse.b, inverse.d, inverse.e, inverse.c, inverse.f]
    values = frame[class_field].tolist() if class_field is not None and len(frame) else [0] * len(frame)
    for position, (geometry, value) in enumerate(zip(frame.geometry.tolist(), values, strict=True)):
        what = f"feature {position}"
        label = classes.index(value)
        if label is None:
            clip.problem("unknown_class", f"{what} has class {value!r}, not {classes.describe()}.")
            continue
        if geometry is None or not isinstance(geometry, (Polygon, MultiPolygon)):
            kind = "no geometry" if geometry is None else f"a {geometry.geom_type}"
            clip.problem("bad_geometry", f"{what} has {kind}; objects need a Polygon or MultiPolygon.")
            continue
        clip.add(shapely.affinity.affine_transform(geometry, coefficients), label, what, polygonal=True)
    return out


def read_yolo(
    path: Path, shape: tuple[int, int], classes: ClassMap, min_box_size: float = 1.0
) -> Annotations:
    """YOLO ``class cx cy w h`` lines (normalised to the image), or ``class x1 y1 x2 y2 ...`` polygons."""
    out = Annotations()
    clip = _Clipper(path, shape, min_box_size, out)
    height, width = shape
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        what = f"line {number}"
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            clip.problem("bad_geometry", f"{what} {line!r} is not 'class cx cy w h' numbers.")
            continue
        label = classes.index(fields[0])
        if label is None:
            clip.problem("unknown_class", f"{what} has class {fields[0]!r}, not {classes.describe()}.")
            continue
        if len(values) == 4:
            cx, cy, w, h = values
            if w <= 0 or h <= 0:
                clip.problem("bad_geometry", f"{what} has a box of width {w} and height {h}.")
                continue
            geometry = box(
                (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height
            )
            clip.add(geometry, label, what, polygonal=False)
        elif len(values) >= 6 and len(values) % 2 == 0:
            points = [(x * width, y * height) for x, y in zip(values[0::2], values[1::2], strict=True)]
            clip.add(Polygon(points), label, what, polygonal=True)
        else:
            clip.problem(
                "bad_geometry", f"{what} has {len(values)} numbers; expected 4 (a box) or an even >= 6."
            )
    return out


def _coco_geometry(annotation: dict[str, Any]) -> tuple[BaseGeometry | None, bool]:
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, list) and segmentation and isinstance(segmentation[0], list):
        rings = [Polygon(list(zip(s[0::2], s[1::2], strict=False))) for s in segmentation if len(s) >= 6]
        if rings:
            return (rings[0] if len(rings) == 1 else MultiPolygon(rings)), True
    bbox = annotation.get("bbox")
    if isinstance(bbox, Sequence) and len(bbox) == 4:
        x, y, w, h = (float(v) for v in bbox)
        if w > 0 and h > 0:
            return box(x, y, x + w, y + h), False
    return None, False


class CocoFile:
    """One COCO JSON file, indexed by image file-name stem (images may sit in sub-folders)."""

    def __init__(self, path: Path, classes: ClassMap) -> None:
        self.path = path
        self.problems: list[DataProblem] = []
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError(f"{path} is not COCO JSON (no 'images' list)")
        categories = sorted(data.get("categories") or [], key=lambda c: c.get("id", 0))
        self.category: dict[Any, int | None] = {}
        for position, cat in enumerate(categories):
            named = classes.index(cat.get("name")) if classes.class_names else None
            self.category[cat.get("id")] = named if named is not None else classes.index(position)
        self.images = {Path(str(img.get("file_name"))).stem: img for img in data["images"]}
        self.by_image: dict[Any, list[dict[str, Any]]] = {}
        for annotation in data.get("annotations") or []:
            self.by_image.setdefault(annotation.get("image_id"), []).append(annotation)
        self.classes = classes

    def read(self, stem: str, shape: tuple[int, int], min_box_size: float = 1.0) -> Annotations:
        out = Annotations()
        clip = _Clipper(self.path, shape, min_box_size, out)
        image = self.images[stem]
        size = (image.get("height"), image.get("width"))
        if None not in size and tuple(int(v) for v in size) != tuple(shape):
            clip.problem(
                "size_mismatch",
                f"image {stem!r} is listed as {size[0]}x{size[1]} but the raster is {shape[0]}x{shape[1]}.",
            )
            return out
        for annotation in self.by_image.get(image.get("id"), []):
            what = f"annotation {annotation.get('id')} of image {stem!r}"
            label = self.category.get(annotation.get("category_id"))
            if label is None:
                clip.problem(
                    "unknown_class",
                    f"{what} has category_id {annotation.get('category_id')!r}, not a known class.",
                )
                continue
            geometry, polygonal = _coco_geometry(annotation)
            if geometry is None:
                clip.problem(
                    "bad_geometry", f"{what} has neither a polygon segmentation nor a positive bbox."
                )
                continue
            clip.add(geometry, label, what, polygonal)
        return out


__all__ = [
    "LABEL_FORMATS",
    "Annotations",
    "ClassMap",
    "CocoFile",
    "LabelFormat",
    "PixelObject",
    "detect_format",
    "read_vector",
    "read_yolo",
]
