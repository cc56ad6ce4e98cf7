"""The Teach page's map: the scene, the saved shapes coloured by class, Leaflet.draw's toolbar, and
the last round's prediction and uncertainty as layers, all served by the app (no CDN).

Leaflet.draw 1.0.4 is vendored in ``geoft/app/vendor/leaflet-draw`` (MIT, see its LICENSE) and copied
into the app's ``static/`` folder beside Leaflet by :func:`install_leaflet_draw`.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geoft.app.imagery import hex_color
from geoft.app.maps import (
    Legend,
    Raster,
    add_overlay,
    finish_map,
    image_base_map,
    leaflet_urls,
    warp_to_web_mercator,
)
from geoft.datasets.drawn_labels import CLASS_COLUMN

DRAW_DIR = "leaflet-draw"
VENDORED = Path(__file__).parent / "vendor" / DRAW_DIR
SHAPES_LAYER = "drawn shapes"
# what may be drawn: labels are areas or points (lines and circles are no labels)
DRAW_OPTIONS = {
    "polyline": False,
    "circle": False,
    "circlemarker": False,
    "polygon": True,
    "rectangle": True,
    "marker": True,
}


def install_leaflet_draw(static_dir: Path) -> Path:
    """Copy the vendored Leaflet.draw (js, css, sprites) into ``static_dir/leaflet-draw`` when missing or changed."""
    dest = Path(static_dir) / DRAW_DIR
    for src in [p for p in VENDORED.rglob("*") if p.is_file() and p.name != "LICENSE"]:
        target = dest / src.relative_to(VENDORED)
        if not target.is_file() or target.stat().st_size != src.stat().st_size:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    return dest


def leaflet_draw_urls(base_url_path: str = "") -> tuple[str, str]:
    """URLs of Leaflet.draw's js and css under Streamlit static serving, beside Leaflet's."""
    leaflet_js, _ = leaflet_urls(base_url_path)
    prefix = f"{leaflet_js.rsplit('/', 2)[0]}/{DRAW_DIR}"  # .../app/static/leaflet-draw
    return f"{prefix}/leaflet.draw.js", f"{prefix}/leaflet.draw.css"


def uncertainty_pixels(
    layer: Raster, kind: str, max_size: int = 1024
) -> tuple[np.ndarray, list[list[float]]]:
    """The uncertainty raster as RGBA (transparent where sure, red where unsure) and its lat/lon bounds.

    Entropy is scaled by its largest value in the scene, margin read as ``1 - margin``: both give 1
    where the model hesitates most.
    """
    values, valid, bounds = warp_to_web_mercator(
        layer.array[:1], layer.crs, layer.transform, max_size=max_size
    )
    unsure = values[0] if kind != "margin" else 1.0 - values[0]
    top = float(unsure[valid].max()) if valid.any() else 0.0
    scaled = np.clip(unsure / top, 0, 1) if top > 0 else np.zeros_like(unsure)
    rgba = np.zeros((*unsure.shape, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = (200 * (1 - scaled)).astype(np.uint8)
    rgba[..., 3] = np.where(valid, 40 + 200 * scaled, 0).astype(np.uint8)
    return rgba, bounds


def teach_map(
    image: Raster,
    rgb_bands: Sequence[int],
    urls: tuple[str, str, str, str],
    features: Sequence[dict[str, Any]],
    class_names: Sequence[str],
    colors: Sequence[Sequence[int]],
    prediction: Raster | None = None,
    uncertainty: tuple[Raster, str] | None = None,
    tiles: str | None = None,
) -> Any:
    """The scene with the saved shapes (editable by Leaflet.draw), and the round's layers if given.

    ``urls``: Leaflet's js and css, then Leaflet.draw's js and css.
    """
    import folium
    from folium.plugins import Draw

    js, css, draw_js, draw_css = urls
    m = image_base_map(image, rgb_bands, js, css, tiles=tiles)
    if prediction is not None:
        from geoft.app.imagery import colorize

        classes, valid, bounds = warp_to_web_mercator(
            prediction.array[:1],
            prediction.crs,
            prediction.transform,
            categorical=True,
            nodata=prediction.nodata,
        )
        mask = classes[0].astype(np.int64)
        mask[~valid] = -1
        add_overlay(m, colorize(mask, colors), bounds, name="prediction", opacity=0.5)
    if uncertainty is not None:
        pixels, bounds = uncertainty_pixels(*uncertainty)
        add_overlay(m, pixels, bounds, name=f"uncertainty ({uncertainty[1]})", opacity=1.0)
    shapes = folium.FeatureGroup(name=SHAPES_LAYER)
    color_of = {n: hex_color(c) for n, c in zip(class_names, colors)}
    for feature in features:  # one layer per shape: the delete tool removes one shape at a time
        color = color_of.get(feature["properties"][CLASS_COLUMN], "#ffffff")
        folium.GeoJson(
            {"type": "FeatureCollection", "features": [feature]},
            style_function=lambda _f, c=color: {"color": c, "weight": 2, "fillOpacity": 0.35},
            marker=folium.CircleMarker(radius=6, fill=True, color=color, fill_opacity=0.9),
        ).add_to(shapes)
    shapes.add_to(m)
    Draw(
        feature_group=shapes,
        draw_options=DRAW_OPTIONS,
        edit_options={"edit": False, "remove": True},  # delete and redraw: saved shapes are GeoJSON layers
        show_geometry_on_click=False,
    ).add_to(m)
    finish_map(m, js, css, legend=Legend.build(class_names, colors) if class_names else None)
    use_local_draw(m, draw_js, draw_css)
    return m


def use_local_draw(m: Any, draw_js: str, draw_css: str) -> None:
    """Point the Draw plugin at the app's own Leaflet.draw (``finish_map`` dropped its CDN links)."""
    from folium.plugins import Draw

    for child in m._children.values():
        if isinstance(child, Draw):
            child.default_js = [("leaflet_draw_js", draw_js)]
            child.default_css = [("leaflet_draw_css", draw_css)]
