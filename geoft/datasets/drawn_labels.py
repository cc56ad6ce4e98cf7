"""Labels drawn on a map: kept as a GeoPackage in the scene's CRS, and turned into sparse training chips.

An analyst draws polygons (or points) for each class over a scene. The map returns GeoJSON in WGS84;
:func:`save_drawn_labels` checks it and writes a GeoPackage (one row per shape, columns ``class`` and
``geometry``) in the scene's CRS, so the work is kept and the CLI can reuse it. :func:`write_label_chips`
cuts the scene into chips where shapes lie and writes each chip's label raster: the class index inside
a shape, ``ignore_index`` everywhere else (and where shapes of two classes overlap), so training learns
from the drawn pixels only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoft.errors import DataError

LAYER = "labels"
CLASS_COLUMN = "class"
DRAWABLE = ("Polygon", "MultiPolygon", "Point", "MultiPoint")
IMAGES, LABELS = "images", "labels"


@dataclass(frozen=True)
class LabelChips:
    """What :func:`write_label_chips` wrote: chip folders, and how many pixels carry a label per class."""

    images: Path
    labels: Path
    chips: int
    labelled_pixels: dict[str, int]
    ignore_index: int

    def datamodule_init_args(self) -> dict[str, Any]:
        """The training split of a ``GenericNonGeoSegmentationDataModule`` over these chips."""
        return {
            "train_data_root": str(self.images),
            "train_label_data_root": str(self.labels),
            "img_grep": "*.tif",
            "label_grep": "*.tif",
            "ignore_index": self.ignore_index,
        }


def _scene_crs(scene: Path) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(scene) as src:
            if src.crs is None:
                raise DataError(f"{scene} has no CRS", hint="labels are drawn on georeferenced scenes only")
            return src.crs
    except RasterioIOError as err:
        raise DataError(f"cannot read scene {scene}: {err}", hint="is it a GeoTIFF?") from err


def _checked(features: Sequence[Mapping[str, Any]], class_names: Sequence[str], source: str) -> list[dict]:
    from shapely.geometry import shape

    problems: list[str] = []
    rows = []
    for i, feature in enumerate(features):
        name = (feature.get("properties") or {}).get(CLASS_COLUMN)
        geometry = feature.get("geometry") or {}
        if name not in class_names:
            problems.append(f"shape {i}: class {name!r} is not one of {', '.join(class_names)}")
            continue
        if geometry.get("type") not in DRAWABLE:
            problems.append(
                f"shape {i}: a {geometry.get('type')!r} cannot be a label (draw polygons or points)"
            )
            continue
        try:
            geom = shape(geometry)
        except (ValueError, TypeError, AttributeError) as err:
            problems.append(f"shape {i}: unreadable geometry ({err})")
            continue
        if geom.is_empty or not geom.is_valid:
            problems.append(f"shape {i}: {'empty' if geom.is_empty else 'self-intersecting'} geometry")
            continue
        rows.append({CLASS_COLUMN: name, "geometry": geom})
    if problems:
        raise DataError(
            f"drawn labels {source}: " + "; ".join(problems), hint="redraw or delete those shapes"
        )
    if not rows:
        raise DataError(f"drawn labels {source}: no shapes", hint="draw at least one shape per class")
    return rows


def save_drawn_labels(
    features: Sequence[Mapping[str, Any]], scene: str | Path, class_names: Sequence[str], out: str | Path
) -> Path:
    """Write GeoJSON ``features`` (WGS84, ``properties.class`` a class name) as a GeoPackage in the
    scene's CRS at ``out`` (atomically; an earlier file is replaced only once the new one is whole)."""
    import geopandas

    scene, out = Path(scene), Path(out)
    rows = _checked(features, class_names, str(out))
    frame = geopandas.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326").to_crs(_scene_crs(scene))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    tmp.unlink(missing_ok=True)
    frame.to_file(tmp, layer=LAYER, driver="GPKG")
    os.replace(tmp, out)
    return out


def read_drawn_labels(path: str | Path, scene: str | Path, class_names: Sequence[str]) -> Any:
    """The shapes of a drawn-labels GeoPackage (or any vector file with a ``class`` column), in the scene's CRS."""
    import geopandas

    path = Path(path)
    try:
        frame = geopandas.read_file(path)
    except Exception as err:  # pyogrio raises its own error types for unreadable files
        raise DataError(
            f"cannot read drawn labels {path}: {err}", hint="is it a GeoPackage or GeoJSON?"
        ) from err
    if CLASS_COLUMN not in frame.columns:
        raise DataError(
            f"drawn labels {path} have no {CLASS_COLUMN!r} column", hint="each shape needs its class name"
        )
    features = [
        {"properties": {CLASS_COLUMN: row[CLASS_COLUMN]}, "geometry": row.geometry.__geo_interface__}
        for _, row in frame.to_crs("EPSG:4326").iterrows()
    ]
    _checked(features, class_names, str(path))
    return frame.to_crs(_scene_crs(Path(scene)))


def rasterize_labels(
    shapes: Any, class_names: Sequence[str], transform: Any, height: int, width: int, ignore_index: int = -1
) -> np.ndarray:
    """``[height, width]`` int16 labels: the class index inside shapes, ``ignore_index`` elsewhere and
    where shapes of different classes overlap."""
    from rasterio.features import rasterize

    labels = np.full((height, width), ignore_index, np.int16)
    seen = np.zeros((height, width), np.int16)
    for index, name in enumerate(class_names):
        geoms = [g for g, c in zip(shapes.geometry, shapes[CLASS_COLUMN]) if c == name]
        if not geoms:
            continue
        inside = rasterize(geoms, out_shape=(height, width), transform=transform, fill=0, default_value=1)
        inside = inside.astype(bool)
        labels[inside] = index
        seen += inside
    labels[seen > 1] = ignore_index
    return labels


def write_label_chips(
    scene: str | Path,
    drawn: str | Path,
    class_names: Sequence[str],
    out: str | Path,
    chip_size: int = 128,
    ignore_index: int = -1,
) -> LabelChips:
    """Cut ``scene`` into ``chip_size`` chips where drawn shapes lie; write ``out/images/<chip>.tif``
    and ``out/labels/<chip>.tif`` (same names, the scene's georeference) for a segmentation datamodule."""
    import rasterio
    from rasterio.windows import Window

    scene, out = Path(scene), Path(out)
    shapes = read_drawn_labels(drawn, scene, class_names)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    (out / LABELS).mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(class_names, 0)
    chips = 0
    with rasterio.open(scene) as src:
        labels = rasterize_labels(shapes, class_names, src.transform, src.height, src.width, ignore_index)
        if not (labels != ignore_index).any():
            raise DataError(
                f"drawn labels {drawn} cover no pixel of {scene}", hint="draw the shapes on the scene"
            )
        for row in range(0, src.height, chip_size):
            for col in range(0, src.width, chip_size):
                window = Window(col, row, min(chip_size, src.width - col), min(chip_size, src.height - row))
                chip = labels[row : row + window.height, col : col + window.width]
                if not (chip != ignore_index).any():
                    continue
                name = f"{scene.stem}_r{row}_c{col}.tif"
                transform = src.window_transform(window)
                size = {"width": window.width, "height": window.height, "transform": transform}
                image_profile = {**src.profile, **size, "tiled": False}
                image_profile.pop("blockxsize", None), image_profile.pop("blockysize", None)
                with rasterio.open(out / IMAGES / name, "w", **image_profile) as dst:
                    dst.write(src.read(window=window))
                    dst.descriptions = src.descriptions
                label_profile = {
                    "driver": "GTiff", "count": 1, "dtype": "int16", "crs": src.crs, "nodata": ignore_index, **size,
                }  # fmt: skip
                with rasterio.open(out / LABELS / name, "w", **label_profile) as dst:
                    dst.write(chip[None])
                for index, cls in enumerate(class_names):
                    counts[cls] += int((chip == index).sum())
                chips += 1
    return LabelChips(out / IMAGES, out / LABELS, chips, counts, ignore_index)


__all__ = ["LabelChips", "rasterize_labels", "read_drawn_labels", "save_drawn_labels", "write_label_chips"]
