"""Offline maps: no CDN URL anywhere, correct Web Mercator placement, downsampling, stretch, colours."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geoft.app.imagery import colorize, percentile_stretch
from geoft.app.maps import (
    Raster,
    build_scene_map,
    external_urls,
    install_leaflet,
    leaflet_urls,
    read_for_display,
    warp_to_web_mercator,
)
from geoft.errors import DataError

JS, CSS = leaflet_urls()


def _utm_scene(h: int = 64, w: int = 80, bands: int = 6) -> Raster:
    rng = np.random.default_rng(0)
    arr = rng.uniform(0, 3000, size=(bands, h, w)).astype(np.float32)
    return Raster(arr, "EPSG:32614", from_origin(500000, 4000000, 30, 30), None)


def test_install_leaflet_copies_static_files(tmp_path: Path):
    dest = install_leaflet(tmp_path / "static")
    assert (dest / "leaflet.js").stat().st_size > 100_000
    assert (dest / "leaflet.css").is_file() and (dest / "images" / "layers.png").is_file()
    assert leaflet_urls("sub/") == (
        "/sub/app/static/leaflet/leaflet.js",
        "/sub/app/static/leaflet/leaflet.css",
    )


def test_scene_map_has_no_external_url_and_image_layers():
    import streamlit_folium

    scene = _utm_scene()
    pred = Raster((scene.array[0] > 1500).astype(np.uint8)[None], scene.crs, scene.transform, None)
    m = build_scene_map(
        scene,
        [2, 1, 0],
        JS,
        CSS,
        prediction=pred,
        class_names=["land", "water"],
        colors=[(0, 0, 0), (0, 0, 255)],
    )
    assert external_urls(m) == []
    html = m.get_root().render()
    assert html.count("L.imageOverlay") == 2
    assert "data:image/png;base64," in html
    assert "L.control.layers" in html and "geoft-legend" in html
    assert "tileLayer" not in html  # no base tiles by default
    # what streamlit-folium would hand its frontend: only the local Leaflet
    assert re.findall(r"https?://", streamlit_folium._get_header(m).replace("http-equiv", "")) == []


def test_default_folium_map_does_use_cdns():
    """Guard for the test above: folium really does load CDN assets unless we strip them."""
    import folium

    assert any("cdn" in u for u in external_urls(folium.Map(tiles=None)))


def test_warp_places_utm_scene_at_correct_latlon():
    scene = _utm_scene()
    warped, valid, bounds = warp_to_web_mercator(scene.array, scene.crs, scene.transform)
    (s, w), (n, e) = bounds
    # UTM zone 14N, easting 500000 is the central meridian -99 deg; northing 4e6 m is ~36.1 deg N
    assert w == pytest.approx(-99.0, abs=0.01)
    assert n == pytest.approx(36.14, abs=0.02)
    assert s < n and w < e
    assert valid.mean() > 0.9
    assert warped.shape[0] == 6


def test_large_scene_is_downsampled_for_display():
    scene = _utm_scene(h=900, w=1200, bands=1)
    warped, _, _ = warp_to_web_mercator(scene.array, scene.crs, scene.transform, max_size=256)
    assert max(warped.shape[1:]) <= 257


def test_ungeoreferenced_raster_is_a_clear_error():
    with pytest.raises(DataError, match="no coordinate reference system"):
        warp_to_web_mercator(np.zeros((1, 4, 4)), None, None)


def test_read_for_display_decimates(tmp_path: Path):
    path = tmp_path / "big.tif"
    profile = dict(
        driver="GTiff",
        width=600,
        height=400,
        count=2,
        dtype="uint16",
        crs="EPSG:4326",
        transform=from_origin(10, 50, 0.001, 0.001),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((2, 400, 600), dtype=np.uint16))
    r = read_for_display(path, max_size=300)
    assert r.array.shape == (2, 200, 300)
    assert r.transform.a == pytest.approx(0.002)
    with pytest.raises(DataError, match="cannot read raster"):
        read_for_display(tmp_path / "missing.tif")


def test_stretch_and_colorize():
    img = np.stack([np.linspace(0, 100, 100).reshape(10, 10)] * 3).astype(np.float32)
    img[0, 0, 0] = -9999
    rgb = percentile_stretch(img, [0, 1, 2], nodata=-9999)
    assert rgb.dtype == np.uint8 and rgb[0, 0, 0] == 0 and rgb[9, 9, 0] == 255
    rgba = colorize(np.array([[0, 1], [2, -1]]), [(1, 2, 3), (4, 5, 6)])
    assert rgba[0, 0].tolist() == [1, 2, 3, 255] and rgba[0, 1].tolist() == [4, 5, 6, 255]
    assert rgba[1, 0, 3] == 0 and rgba[1, 1, 3] == 0  # out of range and negative -> transparent


def test_per_class_scores_from_confusion(tmp_path: Path):
    import json

    from geoft.app.evaluation import load_confusion, per_class_scores

    rows = per_class_scores([[8, 2], [1, 9]], ["land", "water"])
    assert rows[0]["IoU"] == pytest.approx(8 / 11) and rows[1]["IoU"] == pytest.approx(9 / 12)
    assert rows[1]["recall"] == pytest.approx(0.9) and rows[0]["pixels"] == 10
    assert load_confusion(tmp_path) == {}
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "confusion_matrices.json").write_text(
        json.dumps({"val": {"epoch": 1, "class_names": ["a", "b"], "matrix": [[1, 0], [0, 1]]}})
    )
    assert load_confusion(tmp_path)["val"]["epoch"] == 1


def test_progress_from_run_folder_metrics(tmp_path: Path):
    import json

    from geoft.app.progress import best_metrics, estimate_progress, read_events, read_metrics

    lines = [
        {"event": "start", "time": 0, "stage": "fit", "max_epochs": 4},
        {
            "event": "metrics",
            "time": 1,
            "stage": "train",
            "epoch": 0,
            "step": 0,
            "metrics": {"train/loss": 2.0},
        },
        {
            "event": "metrics",
            "time": 2,
            "stage": "train",
            "epoch": 0,
            "step": 1,
            "metrics": {"train/loss": 1.5},
        },
        {
            "event": "metrics",
            "time": 3,
            "stage": "val",
            "epoch": 0,
            "step": 1,
            "metrics": {"val/loss": 1.2, "val/mIoU": 0.3},
        },
        {
            "event": "metrics",
            "time": 4,
            "stage": "train",
            "epoch": 1,
            "step": 2,
            "metrics": {"train/loss": 1.0},
        },
        {
            "event": "metrics",
            "time": 5,
            "stage": "val",
            "epoch": 1,
            "step": 3,
            "metrics": {"val/loss": 1.4, "val/mIoU": 0.5},
        },
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"event": "metrics", "trunc')
    records = read_metrics(path)
    assert len(records) == 5 and records[0] == {"train/loss": 2.0, "epoch": 0, "step": 0, "time": 1}
    assert read_events(path)[0]["max_epochs"] == 4
    assert best_metrics(path) == {"val/loss": 1.2, "val/mIoU": 0.5}
    p = estimate_progress(records, 4, started=100.0, now=110.0)
    assert p.epoch == 1 and p.step == 3
    assert p.fraction == pytest.approx(0.5)  # 2 steps per epoch, 4 of 8 steps done
    assert p.eta_s == pytest.approx(10.0)
    assert (
        "ETA after the first epoch" in estimate_progress(records[:2], 4, started=100.0, now=101.0).describe()
    )
