"""Offline folium maps: Leaflet served by the app itself, rasters warped to Web Mercator.

folium's defaults load Leaflet, jQuery, Bootstrap and Font Awesome from CDNs. Here every map uses
only the Leaflet copy from the ``django-js-lib-leaflet`` package, copied into the app's ``static/``
folder (Streamlit static serving), and no base tiles unless configured: the imagery is the base.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoft.app.imagery import hex_color, png_data_url
from geoft.errors import ConfigError, DataError

LEAFLET_DIR = "leaflet"
WEB_MERCATOR = "EPSG:3857"
MAX_LAT = 85.05112878
BASEMAP_NATIVE_ZOOM = 19  # OpenStreetMap's finest level (and most XYZ servers'); enlarged beyond it


def leaflet_source_dir() -> Path:
    """Leaflet's files inside the installed ``js_lib_leaflet`` package."""
    import js_lib_leaflet

    folder = Path(js_lib_leaflet.__file__).parent / "static" / "js_lib_leaflet"
    if not (folder / "leaflet.js").is_file():
        raise ConfigError(f"Leaflet files missing in {folder}", hint="pip install django-js-lib-leaflet")
    return folder


def install_leaflet(static_dir: Path) -> Path:
    """Copy Leaflet (js, css, images) into ``static_dir/leaflet`` when missing or changed."""
    src = leaflet_source_dir()
    dest = Path(static_dir) / LEAFLET_DIR
    for rel in ("leaflet.js", "leaflet.css", *(f"images/{p.name}" for p in (src / "images").iterdir())):
        target = dest / rel
        if not target.is_file() or target.stat().st_size != (src / rel).stat().st_size:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
    return dest


def leaflet_urls(base_url_path: str = "") -> tuple[str, str]:
    """URLs of Leaflet's js and css under Streamlit static serving (``/app/static/...``)."""
    base = "/" + base_url_path.strip("/") if base_url_path.strip("/") else ""
    prefix = f"{base}/app/static/{LEAFLET_DIR}"
    return f"{prefix}/leaflet.js", f"{prefix}/leaflet.css"


def warp_to_web_mercator(
    array: np.ndarray,
    crs: Any,
    transform: Any,
    max_size: int = 1024,
    categorical: bool = False,
    nodata: float | None = None,
) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    """Reproject ``[C, H, W]`` to EPSG:3857 at no more than ``max_size`` pixels a side.

    Returns the warped array, a validity mask (False outside the source footprint or at nodata) and
    the lat/lon bounds. Class masks use nearest-neighbour resampling, images bilinear.
    """
    import rasterio.warp
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.transform import Affine, array_bounds

    if crs is None or transform is None:
        raise DataError(
            "the raster has no coordinate reference system, so it cannot be placed on a map",
            hint="use a georeferenced GeoTIFF, or look at the side-by-side view instead",
        )
    src_crs = CRS.from_user_input(crs)
    src_transform = transform if isinstance(transform, Affine) else Affine(*transform[:6])
    if array.ndim == 2:
        array = array[None]
    count, height, width = array.shape
    left, bottom, right, top = array_bounds(height, width, src_transform)
    dst_transform, dst_w, dst_h = rasterio.warp.calculate_default_transform(
        src_crs, WEB_MERCATOR, width, height, left, bottom, right, top
    )
    scale = max(dst_w, dst_h) / max_size
    if scale > 1:  # downsample large scenes for display
        dst_w, dst_h = max(1, int(round(dst_w / scale))), max(1, int(round(dst_h / scale)))
        dst_transform, dst_w, dst_h = rasterio.warp.calculate_default_transform(
            src_crs, WEB_MERCATOR, width, height, left, bottom, right, top, dst_width=dst_w, dst_height=dst_h
        )
    resampling = Resampling.nearest if categorical else Resampling.bilinear
    src = array.astype(np.float32)
    valid_src = np.ones((height, width), dtype=np.uint8)
    if nodata is not None:
        valid_src &= np.all(array != nodata, axis=0).astype(np.uint8)
    valid_src &= np.all(np.isfinite(src), axis=0).astype(np.uint8)
    src = np.nan_to_num(src)
    out = np.zeros((count, dst_h, dst_w), dtype=np.float32)
    valid = np.zeros((dst_h, dst_w), dtype=np.uint8)
    common = dict(
        src_transform=src_transform, src_crs=src_crs, dst_transform=dst_transform, dst_crs=WEB_MERCATOR
    )
    rasterio.warp.reproject(src, out, resampling=resampling, **common)
    rasterio.warp.reproject(
        valid_src, valid, resampling=Resampling.nearest, src_nodata=255, dst_nodata=0, **common
    )
    w, s, e, n = array_bounds(dst_h, dst_w, dst_transform)
    (lon_w, lon_e), (lat_s, lat_n) = rasterio.warp.transform(WEB_MERCATOR, "EPSG:4326", [w, e], [s, n])
    bounds = [[max(-MAX_LAT, lat_s), lon_w], [min(MAX_LAT, lat_n), lon_e]]
    return out, valid.astype(bool), bounds


def _strip_cdn_assets(element: Any, js_url: str, css_url: str) -> None:
    """Point an element tree's js/css at the local Leaflet and drop every other external asset."""
    for child in [element, *_descendants(element)]:
        js = getattr(child, "default_js", None)
        css = getattr(child, "default_css", None)
        if js is not None:
            child.default_js = _local_assets(js, "leaflet", js_url)
        if css is not None:
            child.default_css = _local_assets(css, "leaflet_css", css_url)


def _local_assets(
    assets: list[tuple[str, str]], leaflet_name: str, leaflet_url: str
) -> list[tuple[str, str]]:
    """Leaflet at its local URL, other assets already served by this app kept, external ones dropped."""
    return [
        (name, leaflet_url if name == leaflet_name else url)
        for name, url in assets
        if name == leaflet_name or not re.match(r"^(https?:)?//", url)
    ]


def _descendants(element: Any) -> list[Any]:
    out = []
    for child in getattr(element, "_children", {}).values():
        out.append(child)
        out.extend(_descendants(child))
    return out


def asset_urls(element: Any) -> list[str]:
    """Every js/css URL an element tree asks the browser to load (what streamlit-folium loads)."""
    urls = []
    for child in [element, *_descendants(element)]:
        urls += [u for _, u in getattr(child, "default_js", [])]
        urls += [u for _, u in getattr(child, "default_css", [])]
    return urls


def external_urls(element: Any) -> list[str]:
    """Asset URLs and URLs in the rendered script that would leave this server."""
    import folium

    urls = [u for u in asset_urls(element) if re.match(r"^(https?:)?//", u)]
    script = element.get_root().render() if isinstance(element, folium.Map) else ""
    for u in re.findall(r"""["'((](?:https?:)?//[^"')\s]+""", script):
        urls.append(u[1:])
    return urls


class Legend:
    """A Leaflet control on the map: class names and colours, or a colour bar (rendered into the map script)."""

    @staticmethod
    def build(names: Sequence[str], colors: Sequence[Sequence[int]], title: str = "Classes") -> Any:
        rows = "".join(
            f"<div><span style='display:inline-block;width:12px;height:12px;margin-right:4px;"
            f"background:{hex_color(c)};border:1px solid #333'></span>{_escape(n)}</div>"
            for n, c in zip(names, colors)
        )
        return Legend.from_html(f"<b>{_escape(title)}</b>{rows}")

    @staticmethod
    def colorbar(title: str, low: float, high: float, colors: Sequence[Sequence[int]]) -> Any:
        """A colour bar from ``low`` to ``high`` through ``colors`` (a continuous colour map's stops)."""
        stops = ",".join(hex_color(c) for c in colors)
        bar = f"<div style='width:160px;height:10px;background:linear-gradient(to right,{stops})'></div>"
        ends = f"<div style='display:flex;justify-content:space-between'><span>{low:.3g}</span><span>{high:.3g}</span></div>"
        return Legend.from_html(f"<b>{_escape(title)}</b>{bar}{ends}")

    @staticmethod
    def from_html(body: str) -> Any:
        """A bottom-right control showing ``body`` (trusted HTML) on a white card."""
        from branca.element import MacroElement
        from jinja2 import Template

        html = (
            f"<div style='background:white;padding:6px;border-radius:4px;font:12px sans-serif'>{body}</div>"
        )
        element = MacroElement()
        element._name = "Legend"
        element._template = Template(
            "{% macro script(this, kwargs) %}"
            "var legend_{{this.get_name()}} = L.control({position: 'bottomright'});"
            "legend_{{this.get_name()}}.onAdd = function () {"
            "var div = L.DomUtil.create('div', 'geoft-legend'); div.innerHTML = "
            + _js_string(html)
            + "; return div; };"
            "legend_{{this.get_name()}}.addTo({{this._parent.get_name()}});"
            "{% endmacro %}"
        )
        return element


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")


def _js_string(text: str) -> str:
    import json

    return json.dumps(text)


def offline_map(
    bounds: list[list[float]],
    js_url: str,
    css_url: str,
    tiles: str | None = None,
    tiles_attribution: str = "configured tiles",
) -> Any:
    """A folium map fitted to ``bounds`` that loads nothing from the internet (unless ``tiles`` is set)."""
    import folium

    (s, w), (n, e) = bounds
    m = folium.Map(
        location=[(s + n) / 2, (w + e) / 2],
        tiles=None,
        zoom_start=12,
        control_scale=True,
        max_zoom=22,
        zoom_snap=0.25,
    )
    if tiles:
        folium.TileLayer(
            tiles=tiles,
            attr=tiles_attribution,
            name="base map",
            max_zoom=22,
            max_native_zoom=BASEMAP_NATIVE_ZOOM,
        ).add_to(m)
    m.fit_bounds(bounds)
    _strip_cdn_assets(m, js_url, css_url)
    return m


def add_overlay(
    m: Any, pixels: np.ndarray, bounds: list[list[float]], name: str, opacity: float = 1.0
) -> None:
    """Add ``[H, W, 3|4]`` uint8 pixels as an image layer (embedded PNG) named ``name``."""
    from folium.raster_layers import ImageOverlay

    if not 0.0 <= opacity <= 1.0:
        raise ConfigError(f"opacity must be within 0..1, got {opacity}")
    ImageOverlay(
        image=png_data_url(pixels), bounds=bounds, opacity=opacity, name=name, interactive=False
    ).add_to(m)


def finish_map(m: Any, js_url: str, css_url: str, legend: Any | None = None) -> Any:
    """Add the layer switch (and legend), and re-check that no CDN asset crept in."""
    import folium

    if legend is not None:
        legend.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    _strip_cdn_assets(m, js_url, css_url)
    return m


@dataclass(frozen=True)
class Raster:
    """A raster read for display: ``[C, H, W]`` values with georeference (possibly decimated)."""

    array: np.ndarray
    crs: Any
    transform: Any
    nodata: float | None


def read_for_display(path: str | Path, max_size: int = 2048) -> Raster:
    """Read a raster, decimating on read so large scenes stay cheap to show."""
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.transform import Affine

    try:
        with rasterio.open(path) as src:
            scale = max(src.width, src.height) / max_size
            if scale > 1:
                shape = (src.count, max(1, int(src.height / scale)), max(1, int(src.width / scale)))
                array = src.read(out_shape=shape)
                transform = src.transform @ Affine.scale(src.width / shape[2], src.height / shape[1])
            else:
                array = src.read()
                transform = src.transform
            georef = src.crs is not None and not transform.is_identity
            return Raster(array, src.crs if georef else None, transform if georef else None, src.nodata)
    except RasterioIOError as err:
        raise DataError(f"cannot read raster {path}: {err}", hint="is it a GeoTIFF?") from err


def image_base_map(
    image: Raster,
    rgb_bands: Sequence[int],
    js_url: str,
    css_url: str,
    tiles: str | None = None,
    max_size: int = 1024,
    tiles_attribution: str = "configured tiles",
) -> Any:
    """An offline map fitted to ``image``, with the image as its RGB base layer (nodata transparent)."""
    rgba, bounds = rgb_pixels(image, rgb_bands, max_size=max_size)
    m = offline_map(bounds, js_url, css_url, tiles=tiles, tiles_attribution=tiles_attribution)
    add_overlay(m, rgba, bounds, name="image (RGB)", opacity=1.0)
    return m


def rgb_pixels(
    image: Raster, rgb_bands: Sequence[int], max_size: int = 1024
) -> tuple[np.ndarray, list[list[float]]]:
    """``image`` warped to Web Mercator as stretched RGBA pixels (nodata transparent) and its lat/lon bounds."""
    from geoft.app.imagery import percentile_stretch

    warped, valid, bounds = warp_to_web_mercator(
        image.array, image.crs, image.transform, max_size=max_size, nodata=image.nodata
    )
    rgb = percentile_stretch(warped, rgb_bands)
    return np.dstack([rgb, np.where(valid, 255, 0).astype(np.uint8)]), bounds


def build_scene_map(
    image: Raster,
    rgb_bands: Sequence[int],
    js_url: str,
    css_url: str,
    prediction: Raster | None = None,
    truth: Raster | None = None,
    class_names: Sequence[str] = (),
    colors: Sequence[Sequence[int]] = (),
    opacity: float = 0.6,
    tiles: str | None = None,
    max_size: int = 1024,
) -> Any:
    """An offline map: the image as RGB base layer, truth and prediction as class-coloured layers."""
    from geoft.app.imagery import colorize

    m = image_base_map(image, rgb_bands, js_url, css_url, tiles=tiles, max_size=max_size)
    for layer_name, layer in (("ground truth", truth), ("prediction", prediction)):
        if layer is None:
            continue
        classes, cvalid, cbounds = warp_to_web_mercator(
            layer.array[:1],
            layer.crs,
            layer.transform,
            max_size=max_size,
            categorical=True,
            nodata=layer.nodata,
        )
        mask = classes[0].astype(np.int64)
        mask[~cvalid] = -1
        add_overlay(m, colorize(mask, colors), cbounds, name=layer_name, opacity=opacity)
    legend = Legend.build(class_names, colors) if class_names else None
    return finish_map(m, js_url, css_url, legend=legend)
