"""Tile pyramid of a large prediction: time, tiles written and peak memory.

``python benchmarks/tile_pyramid.py [--size 10000] [--out benchmarks/results/tile_pyramid.json]`` writes a
``size`` x ``size`` class raster (uint8, 10 m pixels in UTM, written in strips), then times
:func:`geoft.app.tile_pyramid.write_tile_pyramid` on it (the first call writes every level; the second
finds the pyramid and reuses it), and reports the tiles written, the zoom range and the process's peak
resident memory before and after.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLORS = [(0, 0, 255), (0, 160, 0), (200, 200, 0), (200, 0, 0), (255, 255, 255)]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_prediction(path: Path, size: int, strip: int = 512) -> None:
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = dict(
        driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs="EPSG:32633", nodata=255,
        tiled=True, blockxsize=512, blockysize=512, compress="deflate",
    )  # fmt: skip
    cols = np.arange(size)
    with rasterio.open(path, "w", transform=from_origin(500_000, 5_000_000, 10, 10), **profile) as dst:
        for top in range(0, size, strip):
            rows = np.arange(top, min(size, top + strip))[:, None]
            classes = ((rows // 97 + cols[None, :] // 131) % len(COLORS)).astype(np.uint8)
            dst.write(classes[None], window=Window(0, top, size, len(rows)))


def main() -> None:
    from geoft.app.tile_pyramid import class_style, write_tile_pyramid

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "prediction.tif"
        write_prediction(source, args.size)
        before = peak_rss_mib()
        start = time.perf_counter()
        pyramid = write_tile_pyramid(source, Path(tmp) / "tiles", class_style(COLORS), "classes")
        first = time.perf_counter() - start
        start = time.perf_counter()
        write_tile_pyramid(source, Path(tmp) / "tiles", class_style(COLORS), "classes")
        reuse = time.perf_counter() - start
        result = {
            "size": args.size,
            "tiles": pyramid.tiles,
            "zooms": [pyramid.min_zoom, pyramid.max_zoom],
            "write_s": round(first, 2),
            "reuse_s": round(reuse, 4),
            "peak_rss_mib_before": round(before, 1),
            "peak_rss_mib_after": round(peak_rss_mib(), 1),
        }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
