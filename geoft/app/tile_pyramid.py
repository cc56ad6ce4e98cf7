"""A web-map tile pyramid of a raster, so that a prediction of any size is drawn at full resolution.

Tiles are 256 px PNGs in the web-mercator XYZ scheme (morecantile's ``WebMercatorQuad``), from the zoom
whose pixels are as fine as the raster's down to one where the raster fits in a few tiles. The finest
level is warped from the raster one tile at a time; each coarser tile is made from its four children,
so memory stays at a few tiles whatever the raster's size. A ``pyramid.json`` beside the tiles records
the source (path, size, modification time) and the style, and a pyramid that still matches is reused.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geoft.errors import DataError

TILE_SIZE = 256
MAX_ZOOM = 22
INDEX_FILE = "pyramid.json"
# the coarsest level shows the raster on about this many tiles across
COARSEST_TILES = 2
GDAL_CACHE_MB = 64
MAX_PENDING_TILES = 16

# values [C, h, w] and their validity [h, w] -> RGBA [h, w, 4] uint8
TileStyle = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TilePyramid:
    """A written pyramid: its folder, zoom range and WGS84 bounds ``[[south, west], [north, east]]``."""

    folder: str
    min_zoom: int
    max_zoom: int
    bounds: list[list[float]]
    source: str
    source_size: int
    source_mtime_ns: int
    style_key: str
    tiles: int

    def url_template(self, folder_url: str) -> str:
        """The Leaflet URL of the tiles, given the URL at which :attr:`folder` is served."""
        return folder_url.rstrip("/") + "/{z}/{x}/{y}.png"


def _tms():  # noqa: ANN202 - morecantile's TileMatrixSet
    import morecantile

    return morecantile.tms.get("WebMercatorQuad")


def native_zoom(pixel_size_m: float, latitude: float) -> int:
    """The coarsest zoom whose pixels are at least as fine as ``pixel_size_m`` at ``latitude``."""
    equator = 2 * math.pi * 6378137.0 / TILE_SIZE  # metres per pixel at zoom 0
    ground = equator * math.cos(math.radians(latitude))
    return max(0, min(MAX_ZOOM, math.ceil(math.log2(ground / max(pixel_size_m, 1e-9)))))


def _source_facts(path: Path) -> tuple[list[list[float]], float, float]:
    """WGS84 bounds, pixel size in metres and centre latitude of the raster at ``path``."""
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.warp import transform_bounds

    try:
        with rasterio.open(path) as src:
            if src.crs is None or src.transform.is_identity:
                raise DataError(
                    f"{path} has no georeference", hint="tiles need a GeoTIFF with a CRS and transform"
                )
            west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
            latitude = (south + north) / 2
            left, _, right, _ = transform_bounds(src.crs, "EPSG:3857", *src.bounds)
            ground_width = (right - left) * math.cos(math.radians(latitude))  # mercator metres are stretched
            return [[south, west], [north, east]], ground_width / src.width, latitude
    except RasterioIOError as err:
        raise DataError(f"cannot read raster {path}: {err}", hint="is it a GeoTIFF?") from err


def _finest_level(src, tiles: list, categorical: bool):  # noqa: ANN001, ANN202 - rasterio objects
    """The raster warped once onto the finest level's tile grid, and the top-left tile's (x, y).

    Each tile is then a 256 px window of this one virtual raster, so GDAL warps only what is read.
    """
    from rasterio.enums import Resampling
    from rasterio.transform import from_bounds
    from rasterio.vrt import WarpedVRT

    x0, y0 = min(t.x for t in tiles), min(t.y for t in tiles)
    x1, y1 = max(t.x for t in tiles), max(t.y for t in tiles)
    left, _, _, top = _tms().xy_bounds(type(tiles[0])(x0, y0, tiles[0].z))
    _, bottom, right, _ = _tms().xy_bounds(type(tiles[0])(x1, y1, tiles[0].z))
    width, height = (x1 - x0 + 1) * TILE_SIZE, (y1 - y0 + 1) * TILE_SIZE
    vrt = WarpedVRT(
        src,
        crs="EPSG:3857",
        transform=from_bounds(left, bottom, right, top, width, height),
        width=width,
        height=height,
        resampling=Resampling.nearest if categorical else Resampling.bilinear,
    )
    return vrt, (x0, y0)


def _read_tile(vrt, origin: tuple[int, int], tile, bands: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """One tile of the warped raster: values ``[C, 256, 256]`` and validity ``[256, 256]``."""
    from rasterio.windows import Window

    window = Window((tile.x - origin[0]) * TILE_SIZE, (tile.y - origin[1]) * TILE_SIZE, TILE_SIZE, TILE_SIZE)
    return vrt.read(list(bands), window=window), vrt.read_masks(1, window=window) > 0


def _children(folder: Path, tile) -> np.ndarray | None:  # noqa: ANN001
    """The four children of ``tile`` as one ``[512, 512, 4]`` RGBA array; None if none was written."""
    from PIL import Image

    canvas = np.zeros((2 * TILE_SIZE, 2 * TILE_SIZE, 4), np.uint8)
    found = False
    for dy in (0, 1):
        for dx in (0, 1):
            child = folder / str(tile.z + 1) / str(2 * tile.x + dx) / f"{2 * tile.y + dy}.png"
            if child.is_file():
                with Image.open(child) as image:
                    canvas[dy * TILE_SIZE : (dy + 1) * TILE_SIZE, dx * TILE_SIZE : (dx + 1) * TILE_SIZE] = (
                        np.asarray(image.convert("RGBA"))
                    )
                found = True
    return canvas if found else None


def _write_parent(folder: Path, tile, categorical: bool, path: Path) -> bool:  # noqa: ANN001
    """Write ``tile`` from its children; False when it has none."""
    canvas = _children(folder, tile)
    if canvas is None:
        return False
    _save(_halve(canvas, categorical), path)
    return True


def _halve(canvas: np.ndarray, categorical: bool) -> np.ndarray:
    """``[512, 512, 4]`` -> ``[256, 256, 4]``: every other pixel for classes, a 2x2 mean otherwise."""
    if categorical:
        return canvas[::2, ::2]
    blocks = canvas.reshape(TILE_SIZE, 2, TILE_SIZE, 2, 4).astype(np.float32)
    alpha = blocks[..., 3:4]
    weight = alpha.sum(axis=(1, 3))
    colour = (blocks[..., :3] * alpha).sum(axis=(1, 3)) / np.maximum(weight, 1.0)
    return np.dstack([colour, weight / 4.0]).round().clip(0, 255).astype(np.uint8)


def _save(pixels: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(np.ascontiguousarray(pixels), mode="RGBA").save(tmp, format="PNG")
    os.replace(tmp, path)


def _existing(folder: Path, source: Path, style_key: str) -> TilePyramid | None:
    index = folder / INDEX_FILE
    if not index.is_file():
        return None
    try:
        pyramid = TilePyramid(**json.loads(index.read_text()))
    except (ValueError, TypeError):
        return None
    stat = source.stat()
    same = (pyramid.source, pyramid.source_size, pyramid.source_mtime_ns, pyramid.style_key) == (
        str(source),
        stat.st_size,
        stat.st_mtime_ns,
        style_key,
    )
    return pyramid if same else None


def write_tile_pyramid(
    source: str | Path,
    folder: str | Path,
    style: TileStyle,
    style_key: str,
    bands: Sequence[int] = (1,),
    categorical: bool = True,
    max_zoom: int | None = None,
) -> TilePyramid:
    """Write (or reuse) the tile pyramid of ``source`` into ``folder``.

    Args:
        style: turns a tile's values and validity into RGBA; invalid pixels should be transparent.
        style_key: names the style (e.g. a hash of the class colours); a pyramid in another style is rewritten.
        bands: the raster's bands (1-based) handed to ``style``.
        categorical: class values: nearest-neighbour warping and halving; else bilinear and 2x2 means.
        max_zoom: the finest zoom; default the raster's own resolution (:func:`native_zoom`).
    """
    import rasterio

    source = Path(source).resolve()
    folder = Path(folder)
    reused = _existing(folder, source, style_key)
    if reused is not None:
        return reused
    bounds, pixel_m, latitude = _source_facts(source)
    finest = native_zoom(pixel_m, latitude) if max_zoom is None else max_zoom
    (south, west), (north, east) = bounds
    coarsest = finest
    while coarsest > 0 and len(list(_tms().tiles(west, south, east, north, [coarsest]))) > COARSEST_TILES**2:
        coarsest -= 1
    (folder / INDEX_FILE).unlink(missing_ok=True)
    finest_tiles = list(_tms().tiles(west, south, east, north, [finest]))
    path = lambda tile: folder / str(tile.z) / str(tile.x) / f"{tile.y}.png"  # noqa: E731
    # GDAL reads in this thread; drawing and PNG encoding (which release the GIL) in the pool
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        pending: deque = deque()
        written = 0
        # GDAL's block cache would otherwise grow to 5 % of the RAM for a large source; tiles read each block once
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), rasterio.open(source) as src:
            vrt, origin = _finest_level(src, finest_tiles, categorical)
            with vrt:
                for tile in finest_tiles:
                    values, valid = _read_tile(vrt, origin, tile, bands)
                    if not valid.any():
                        continue
                    pending.append(
                        pool.submit(lambda v, m, t: _save(style(v, m), path(t)), values, valid, tile)
                    )
                    written += 1
                    if len(pending) > MAX_PENDING_TILES:  # bounded memory: wait for the oldest
                        pending.popleft().result()
        for job in pending:
            job.result()
        for zoom in range(finest - 1, coarsest - 1, -1):
            level = [
                pool.submit(_write_parent, folder, tile, categorical, path(tile))
                for tile in _tms().tiles(west, south, east, north, [zoom])
            ]
            written += sum(1 for job in level if job.result())
    stat = source.stat()
    pyramid = TilePyramid(
        folder=str(folder),
        min_zoom=coarsest,
        max_zoom=finest,
        bounds=bounds,
        source=str(source),
        source_size=stat.st_size,
        source_mtime_ns=stat.st_mtime_ns,
        style_key=style_key,
        tiles=written,
    )
    (folder / INDEX_FILE).write_text(json.dumps(asdict(pyramid), indent=1))
    return pyramid


def class_style(colors: Sequence[Sequence[int]]) -> TileStyle:
    """Class indices (band 1) drawn in ``colors``; invalid pixels and unknown classes transparent."""
    from geoft.app.imagery import colorize

    def draw(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        classes = values[0].astype(np.int64)
        classes[~valid] = -1
        return colorize(classes, colors)

    return draw


def stretch_style(low: Sequence[float], high: Sequence[float]) -> TileStyle:
    """Three bands drawn as RGB, each stretched linearly between its ``low`` and ``high`` value."""
    lo = np.asarray(low, np.float32)[:, None, None]
    span = np.maximum(np.asarray(high, np.float32)[:, None, None] - lo, 1e-6)

    def draw(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        rgb = ((values.astype(np.float32) - lo) / span * 255).clip(0, 255)
        finite = valid & np.isfinite(rgb).all(axis=0)
        rgb = np.nan_to_num(rgb).astype(np.uint8).transpose(1, 2, 0)
        return np.dstack([rgb, np.where(finite, 255, 0).astype(np.uint8)])

    return draw


def colormap_lut(name: str = "viridis") -> np.ndarray:
    """A matplotlib colour map as a ``[256, 3]`` uint8 lookup table."""
    import matplotlib

    return (matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def colormap_style(low: float, high: float, name: str = "viridis") -> TileStyle:
    """One band (e.g. an uncertainty) drawn through a colour map between ``low`` and ``high``."""
    lut = colormap_lut(name)
    span = max(float(high) - float(low), 1e-9)

    def draw(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        scaled = (values[0].astype(np.float32) - float(low)) / span
        finite = valid & np.isfinite(scaled)
        index = (np.nan_to_num(scaled).clip(0.0, 1.0) * 255).astype(np.uint8)
        return np.dstack([lut[index], np.where(finite, 255, 0).astype(np.uint8)])

    return draw


__all__ = [
    "TilePyramid",
    "class_style",
    "colormap_lut",
    "colormap_style",
    "native_zoom",
    "stretch_style",
    "write_tile_pyramid",
]
