"""Tile pyramids: the finest tiles show the raster's own pixels where they are, coarser tiles are made
from their children, a pyramid is reused until its source changes, and bad sources are named."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer
from rasterio.transform import from_origin

from geoft.app.tile_pyramid import TILE_SIZE, class_style, native_zoom, stretch_style, write_tile_pyramid
from geoft.errors import DataError

COLORS = [(0, 0, 255), (0, 160, 0), (200, 200, 0)]
CRS = "EPSG:32633"
ORIGIN = (500_000.0, 5_000_000.0)  # UTM 33N, about 45 N 15 E
PIXEL = 10.0


def write_classes(path: Path, size: int = 600) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size]
    classes = ((rows // 37 + cols // 53) % 3).astype(np.uint8)
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs=CRS, nodata=255)
    with rasterio.open(path, "w", transform=from_origin(*ORIGIN, PIXEL, PIXEL), **profile) as dst:
        dst.write(classes, 1)
    return classes


def tile_pixel_lonlat(
    z: int, x: int, y: int, px: np.ndarray, py: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = 2.0**z
    lon = (x + (px + 0.5) / TILE_SIZE) / n * 360.0 - 180.0
    lat = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (y + (py + 0.5) / TILE_SIZE) / n))))
    return lon, lat


def test_native_zoom_is_as_fine_as_the_raster() -> None:
    for pixel, lat in ((10.0, 45.0), (0.5, 0.0), (30.0, -60.0)):
        z = native_zoom(pixel, lat)
        ground = 2 * np.pi * 6378137.0 / TILE_SIZE * np.cos(np.radians(lat))
        assert ground / 2**z <= pixel < ground / 2 ** (z - 1)


def test_finest_tiles_show_each_pixel_where_it_is(tmp_path: Path) -> None:
    classes = write_classes(tmp_path / "prediction.tif")
    pyramid = write_tile_pyramid(
        tmp_path / "prediction.tif", tmp_path / "tiles", class_style(COLORS), "classes"
    )
    assert pyramid.max_zoom == native_zoom(PIXEL, 45.1) and pyramid.min_zoom < pyramid.max_zoom
    to_utm = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    checked = agree = 0
    for tile in sorted((tmp_path / "tiles" / str(pyramid.max_zoom)).rglob("*.png"))[:12]:
        x, y = int(tile.parent.name), int(tile.stem)
        rgba = np.asarray(Image.open(tile).convert("RGBA"))
        py, px = np.nonzero(rgba[..., 3] == 255)
        lon, lat = tile_pixel_lonlat(pyramid.max_zoom, x, y, px, py)
        east, north = to_utm.transform(lon, lat)
        col = ((east - ORIGIN[0]) / PIXEL).astype(int)
        row = ((ORIGIN[1] - north) / PIXEL).astype(int)
        inside = (col >= 0) & (col < classes.shape[1]) & (row >= 0) & (row < classes.shape[0])
        expected = np.asarray(COLORS)[classes[row[inside], col[inside]]]
        agree += int((rgba[py[inside], px[inside], :3] == expected).all(axis=1).sum())
        checked += int(inside.sum())
    assert checked > 10_000
    assert (
        agree / checked > 0.97
    )  # the rest sit on class borders, where nearest-neighbour warping may pick the neighbour


def test_coarser_tiles_are_their_children_halved(tmp_path: Path) -> None:
    write_classes(tmp_path / "prediction.tif")
    pyramid = write_tile_pyramid(
        tmp_path / "prediction.tif", tmp_path / "tiles", class_style(COLORS), "classes"
    )
    z = pyramid.max_zoom - 1
    parent = next((tmp_path / "tiles" / str(z)).rglob("*.png"))
    x, y = int(parent.parent.name), int(parent.stem)
    image = np.asarray(Image.open(parent).convert("RGBA"))
    for dy in (0, 1):
        for dx in (0, 1):
            child = tmp_path / "tiles" / str(z + 1) / str(2 * x + dx) / f"{2 * y + dy}.png"
            half = image[dy * 128 : (dy + 1) * 128, dx * 128 : (dx + 1) * 128]
            if child.is_file():
                assert np.array_equal(half, np.asarray(Image.open(child).convert("RGBA"))[::2, ::2])
            else:
                assert not half[..., 3].any()


def test_a_pyramid_is_reused_until_its_source_or_style_changes(tmp_path: Path) -> None:
    source = tmp_path / "prediction.tif"
    write_classes(source, size=300)
    first = write_tile_pyramid(source, tmp_path / "tiles", class_style(COLORS), "classes")
    some_tile = next((tmp_path / "tiles" / str(first.max_zoom)).rglob("*.png"))
    stamp = some_tile.stat().st_mtime_ns
    assert write_tile_pyramid(source, tmp_path / "tiles", class_style(COLORS), "classes") == first
    assert some_tile.stat().st_mtime_ns == stamp
    os.utime(source, ns=(stamp + 10**9, stamp + 10**9))
    again = write_tile_pyramid(source, tmp_path / "tiles", class_style(COLORS), "classes")
    assert again.source_mtime_ns != first.source_mtime_ns and some_tile.stat().st_mtime_ns != stamp
    other = write_tile_pyramid(source, tmp_path / "tiles", class_style(COLORS[::-1]), "reversed")
    assert other.style_key == "reversed"


def test_imagery_stretch_and_missing_georeference(tmp_path: Path) -> None:
    values = np.stack([np.full((64, 64), v, np.float32) for v in (100.0, 200.0, 300.0)])
    draw = stretch_style([0, 0, 0], [400, 400, 400])
    valid = np.ones((64, 64), bool)
    valid[0, 0] = False
    rgba = draw(values, valid)
    assert tuple(rgba[1, 1]) == (63, 127, 191, 255) and rgba[0, 0, 3] == 0
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8") as dst:
        dst.write(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(DataError, match="plain.tif has no georeference"):
        write_tile_pyramid(plain, tmp_path / "tiles", class_style(COLORS), "classes")
