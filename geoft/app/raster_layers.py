"""Rasters on the map as layers: small ones as one image overlay, large ones as a tile layer.

A raster wider or taller than the overlay limit is drawn from a tile pyramid (:mod:`geoft.app.tile_pyramid`)
written under the app's ``static/tiles/<key>/`` (Streamlit serves only files inside ``static/``), so a
prediction of any size is shown at full resolution and the browser loads only the tiles it looks at.
The same style function colours an overlay and a pyramid's tiles, so both look alike.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geoft.app.maps import read_for_display, warp_to_web_mercator
from geoft.app.tile_pyramid import (
    INDEX_FILE,
    MAX_ZOOM,
    TilePyramid,
    TileStyle,
    class_style,
    colormap_style,
    stretch_style,
    write_tile_pyramid,
)
from geoft.errors import ConfigError, DataError

TILES_DIR = "tiles"
OVERLAY_LIMIT = 1024  # pixels a side; larger rasters are drawn as tiles
STATS_SIZE = 512  # the raster is read at this size for percentiles
COLORMAP = "viridis"
LayerKind = Literal["rgb", "classes", "continuous"]


@dataclass(frozen=True)
class RasterLayer:
    """One raster on the map: ``bands`` are 1-based (three for ``rgb``, one otherwise)."""

    name: str
    path: Path
    kind: LayerKind
    bands: tuple[int, ...] = (1,)
    opacity: float = 1.0
    show: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.opacity <= 1.0:
            raise ConfigError(f"opacity of {self.name} must be within 0..1, got {self.opacity}")
        if len(self.bands) != (3 if self.kind == "rgb" else 1):
            raise ConfigError(
                f"layer {self.name} ({self.kind}) needs {'3 bands' if self.kind == 'rgb' else '1 band'}"
            )


@dataclass(frozen=True)
class TileSource:
    """Where pyramids are written (``static_dir/tiles``) and the URL that folder is served at."""

    static_dir: Path
    url_prefix: str  # e.g. /app/static

    @property
    def root(self) -> Path:
        return Path(self.static_dir) / TILES_DIR

    def folder(self, source: Path, style_key: str) -> Path:
        digest = hashlib.sha1(f"{Path(source).resolve()}|{style_key}".encode()).hexdigest()[:20]
        return self.root / digest

    def url(self, folder: Path) -> str:
        return f"{self.url_prefix.rstrip('/')}/{TILES_DIR}/{folder.name}"


@dataclass(frozen=True)
class DrawnLayer:
    """How a layer went onto the map: ``tiled`` (with its pyramid) or as one overlay."""

    name: str
    tiled: bool
    pyramid: TilePyramid | None = None
    value_range: tuple[float, float] | None = None  # continuous layers: what the colour map spans


def static_url_prefix(base_url_path: str = "") -> str:
    """``/app/static`` under Streamlit's ``server.baseUrlPath``."""
    base = "/" + base_url_path.strip("/") if base_url_path.strip("/") else ""
    return f"{base}/app/static"


def raster_size(path: str | Path) -> tuple[int, int, int]:
    """``(bands, height, width)`` of a raster, read from its header."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            return src.count, src.height, src.width
    except RasterioIOError as err:
        raise DataError(f"cannot read raster {path}: {err}", hint="is it a GeoTIFF?") from err


def needs_tiles(path: str | Path, overlay_limit: int = OVERLAY_LIMIT) -> bool:
    """True when the raster is larger than an overlay shows at full resolution."""
    _, height, width = raster_size(path)
    return max(height, width) > overlay_limit


def _valid_values(path: Path, bands: Sequence[int]) -> np.ndarray:
    raster = read_for_display(path, max_size=STATS_SIZE)
    values = raster.array[[b - 1 for b in bands]].astype(np.float64)
    valid = np.all(np.isfinite(values), axis=0)
    if raster.nodata is not None:
        valid &= np.all(values != raster.nodata, axis=0)
    return values[:, valid]


def value_range(path: Path, band: int = 1, low: float = 2.0, high: float = 98.0) -> tuple[float, float]:
    """The ``low``..``high`` percentiles of one band (what a colour map or stretch spans); remembered
    while the file is unchanged, as reading a large raster even decimated takes a moment."""
    return _percentiles(str(Path(path).resolve()), Path(path).stat().st_mtime_ns, band, low, high)


@functools.lru_cache(maxsize=64)
def _percentiles(path: str, _mtime_ns: int, band: int, low: float, high: float) -> tuple[float, float]:
    values = _valid_values(Path(path), [band])[0]
    if not values.size:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def layer_style(
    layer: RasterLayer, colors: Sequence[Sequence[int]] = ()
) -> tuple[TileStyle, str, bool, tuple[float, float] | None]:
    """The style of ``layer``: the function, its key (what the pyramid is reused for), whether the
    values are classes, and the value range of a continuous layer."""
    if layer.kind == "classes":
        key = "classes:" + json.dumps([list(map(int, c)) for c in colors])
        return class_style(colors), key, True, None
    if layer.kind == "continuous":
        lo, hi = value_range(layer.path, layer.bands[0])
        return (
            colormap_style(lo, hi, COLORMAP),
            f"{COLORMAP}:{lo:.6g}:{hi:.6g}:{layer.bands}",
            False,
            (lo, hi),
        )
    ranges = [value_range(layer.path, b) for b in layer.bands]
    low, high = [r[0] for r in ranges], [r[1] for r in ranges]
    return stretch_style(low, high), f"rgb:{layer.bands}:{low}:{high}", False, None


def ensure_pyramid(
    layer: RasterLayer, tiles: TileSource, colors: Sequence[Sequence[int]] = ()
) -> tuple[TilePyramid, tuple[float, float] | None]:
    """Write (or reuse) the layer's pyramid under ``tiles``; also returns a continuous layer's range."""
    style, key, categorical, span = layer_style(layer, colors)
    folder = tiles.folder(layer.path, key)
    pyramid = write_tile_pyramid(layer.path, folder, style, key, bands=layer.bands, categorical=categorical)
    return pyramid, span


def tile_layer(pyramid: TilePyramid, url: str, name: str, opacity: float = 1.0, show: bool = True) -> Any:
    """A Leaflet tile layer over ``pyramid``: requests only tiles inside its bounds, between its zooms,
    and scales its finest tiles up when zoomed in further."""
    import folium

    return folium.TileLayer(
        tiles=pyramid.url_template(url),
        attr="geoft",
        name=name,
        overlay=True,
        show=show,
        opacity=opacity,
        min_zoom=0,
        max_zoom=MAX_ZOOM,
        max_native_zoom=pyramid.max_zoom,
        min_native_zoom=pyramid.min_zoom,
        bounds=pyramid.bounds,
        no_wrap=True,
    )


def overlay_layer(
    layer: RasterLayer, style: TileStyle, categorical: bool, overlay_limit: int = OVERLAY_LIMIT
) -> Any:
    """The layer as one image overlay (embedded PNG), warped to Web Mercator at most ``overlay_limit`` a side."""
    from folium.raster_layers import ImageOverlay

    from geoft.app.imagery import png_data_url

    raster = read_for_display(layer.path, max_size=2 * overlay_limit)
    values = raster.array[[b - 1 for b in layer.bands]]
    warped, valid, bounds = warp_to_web_mercator(
        values,
        raster.crs,
        raster.transform,
        max_size=overlay_limit,
        categorical=categorical,
        nodata=raster.nodata,
    )
    return ImageOverlay(
        image=png_data_url(style(warped, valid)),
        bounds=bounds,
        opacity=layer.opacity,
        name=layer.name,
        interactive=False,
        show=layer.show,
    )


def add_raster_layer(
    m: Any,
    layer: RasterLayer,
    tiles: TileSource | None,
    colors: Sequence[Sequence[int]] = (),
    overlay_limit: int = OVERLAY_LIMIT,
    force_tiles: bool = False,
) -> DrawnLayer:
    """Put ``layer`` on ``m``: as tiles when it is larger than ``overlay_limit`` (or ``force_tiles``)
    and a ``tiles`` source is given, else as one overlay."""
    if tiles is not None and (force_tiles or needs_tiles(layer.path, overlay_limit)):
        pyramid, span = ensure_pyramid(layer, tiles, colors)
        folder = Path(pyramid.folder)
        tile_layer(pyramid, tiles.url(folder), layer.name, layer.opacity, layer.show).add_to(m)
        return DrawnLayer(layer.name, True, pyramid, span)
    style, _, categorical, span = layer_style(layer, colors)
    overlay_layer(layer, style, categorical, overlay_limit).add_to(m)
    return DrawnLayer(layer.name, False, None, span)


def prune_tile_cache(tiles_root: Path) -> list[Path]:
    """Delete the pyramids whose source raster is gone or changed; returns the folders removed."""
    removed = []
    if not Path(tiles_root).is_dir():
        return removed
    for folder in Path(tiles_root).iterdir():
        index = folder / INDEX_FILE
        try:
            facts = json.loads(index.read_text())
            source = Path(facts["source"])
            stale = not source.is_file() or source.stat().st_mtime_ns != facts["source_mtime_ns"]
        except (OSError, ValueError, KeyError):
            continue  # being written, or not a pyramid: leave it
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


__all__ = [
    "DrawnLayer",
    "RasterLayer",
    "TileSource",
    "add_raster_layer",
    "ensure_pyramid",
    "layer_style",
    "needs_tiles",
    "prune_tile_cache",
    "static_url_prefix",
    "tile_layer",
    "value_range",
]
