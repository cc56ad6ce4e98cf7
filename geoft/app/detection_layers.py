"""Detections (and ground-truth objects) on the offline map: GeoJSON layers coloured by class.

A detection file is the one :mod:`geoft.io.detection_scene` writes (``class``, ``class_name``, ``score``,
geometries in the image's CRS). Layers are reprojected to WGS84 (what GeoJSON on a Leaflet map is in),
filtered by score in Python, so moving the score slider never re-runs the model, and carry a popup
with the class and the score of each object.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geoft.app.imagery import hex_color
from geoft.app.maps import Legend, Raster, finish_map, image_base_map
from geoft.errors import DataError

WGS84 = "EPSG:4326"
TRUTH_SCORE = 1.0  # ground-truth objects have no score; 1 keeps them under every threshold


def read_detections(path: str | Path) -> Any:
    """The detections of a ``.geojson``/``.gpkg`` file as a GeoDataFrame (``class``, ``class_name``, ``score``)."""
    import geopandas as gpd
    from pyogrio.errors import DataSourceError

    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except (DataSourceError, OSError, ValueError) as err:
        raise DataError(f"cannot read detections {path}: {str(err).splitlines()[0]}") from err
    if not len(frame):  # GeoJSON has no schema: an empty file has no fields
        from geoft.vector_writer import geometries_frame

        return geometries_frame([], [], [], frame.crs, None)
    missing = {"class", "score"} - set(frame.columns)
    if missing:
        raise DataError(
            f"{path} has no {sorted(missing)} field(s); it is not a geoft detection file",
            hint="predict it again from this page or with geoft predict-scene",
        )
    return frame


def above_score(frame: Any, threshold: float) -> Any:
    """The detections scoring at least ``threshold``."""
    if not len(frame):
        return frame
    return frame[frame["score"] >= threshold]


def truth_objects(
    label_path: str | Path,
    image_path: str | Path,
    class_names: Sequence[str],
    class_field: str | None = None,
) -> Any | None:
    """A chip's ground-truth objects (GeoJSON/GeoPackage or YOLO labels) as a frame like the detections,
    in the image's CRS; None for COCO (one JSON for all images) or an image without a CRS."""
    import rasterio
    import shapely.affinity
    from shapely.geometry import box

    from geoft.datasets.annotations import ClassMap, detect_format, read_vector, read_yolo
    from geoft.vector_writer import geometries_frame

    label_path, image_path = Path(label_path), Path(image_path)
    kind = detect_format(label_path)
    if kind == "coco":
        return None
    with rasterio.open(image_path) as src:
        transform, crs, shape = src.transform, src.crs, (src.height, src.width)
    if crs is None:
        return None
    classes = ClassMap(len(class_names), tuple(class_names))
    if kind == "vector":
        found = read_vector(label_path, transform, crs.to_string(), shape, classes, class_field)
    else:
        found = read_yolo(label_path, shape, classes)
    if found.problems:
        raise DataError(
            found.problems[0].message, hint="check the label file (geoft validate-data lists all)"
        )
    to_map = [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f]
    geometries = [
        shapely.affinity.affine_transform(o.polygon if o.polygon is not None else box(*o.box), to_map)
        for o in found.objects
    ]
    labels = [o.label for o in found.objects]
    return geometries_frame(geometries, labels, [TRUTH_SCORE] * len(labels), crs, class_names)


def _popup_fields(frame: Any) -> Any:
    """``class_name`` as text and ``score`` rounded, the two fields a popup shows."""
    frame = frame.copy()
    if "class_name" not in frame.columns:
        frame["class_name"] = frame["class"].astype(str)
    frame["class_name"] = frame["class_name"].astype(str)
    frame["score"] = frame["score"].astype(float).round(3)
    return frame[["class", "class_name", "score", "geometry"]]


def detection_layer(
    frame: Any,
    colors: Sequence[Sequence[int]],
    name: str,
    truth: bool = False,
) -> Any:
    """A folium GeoJSON layer of ``frame``'s objects in WGS84: outlines in the class colour (detections
    filled, ground truth dashed and hollow), a popup and a tooltip with class and score."""
    import folium

    if frame.crs is None:
        raise DataError(
            "the detections have no CRS (the image is not georeferenced), so they cannot go on a map"
        )
    data = _popup_fields(frame.to_crs(WGS84))
    palette = [hex_color(c) for c in colors] or ["#ff0000"]

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        color = palette[int(feature["properties"]["class"]) % len(palette)]
        if truth:
            return {"color": color, "weight": 2, "dashArray": "4 3", "fillOpacity": 0.0}
        return {"color": color, "weight": 2, "fillColor": color, "fillOpacity": 0.25}

    # ground truth has no score: its popup says what it is instead
    fields, aliases = (
        (["class_name"], ["ground truth"]) if truth else (["class_name", "score"], ["class", "score"])
    )
    clickable = len(data) > 0  # folium checks popup fields against the first feature
    # the same text on hover: inside streamlit-folium a click re-renders the map, closing the popup
    return folium.GeoJson(
        data.__geo_interface__,
        name=name,
        style_function=style,
        popup=folium.GeoJsonPopup(fields=fields, aliases=aliases) if clickable else None,
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases) if clickable else None,
    )


def build_detection_map(
    image: Raster,
    rgb_bands: Sequence[int],
    js_url: str,
    css_url: str,
    detections: Any,
    class_names: Sequence[str],
    colors: Sequence[Sequence[int]],
    score_threshold: float = 0.5,
    truth: Any | None = None,
    tiles: str | None = None,
    max_size: int = 1024,
    tiles_attribution: str = "configured tiles",
) -> Any:
    """An offline map: the image as RGB base layer, the ground truth (when given) and the detections
    scoring at least ``score_threshold`` as class-coloured layers, and a class legend."""
    m = image_base_map(
        image, rgb_bands, js_url, css_url, tiles=tiles, max_size=max_size, tiles_attribution=tiles_attribution
    )
    if truth is not None:
        detection_layer(truth, colors, "ground truth", truth=True).add_to(m)
    shown = above_score(detections, score_threshold)
    detection_layer(shown, colors, f"detections (score ≥ {score_threshold:.2f})").add_to(m)
    legend = Legend.build(class_names, colors) if class_names else None
    return finish_map(m, js_url, css_url, legend=legend)


__all__ = ["above_score", "build_detection_map", "detection_layer", "read_detections", "truth_objects"]
