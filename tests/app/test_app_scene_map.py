"""The Predict page's layered maps without Streamlit: which layers a run yields, tile layers for large
rasters, the base-map choice (probe mocked, or a local server), the swipe comparison; and the page."""

from __future__ import annotations

import http.server
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geoft.app.basemap import cached_probe, choose_base_map, probe_tiles, sample_tile_url
from geoft.app.maps import external_urls
from geoft.app.raster_layers import RasterLayer, TileSource, add_raster_layer, prune_tile_cache
from geoft.app.scene_map import (
    LayerChoice,
    compare_map,
    install_side_by_side,
    layered_map,
    other_predictions,
    run_layers,
)
from geoft.app.settings import OSM_URL, load_settings
from geoft.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
JS, CSS = "/app/static/leaflet/leaflet.js", "/app/static/leaflet/leaflet.css"
COLORS = [(0, 0, 255), (255, 0, 0)]


def _raster(path: Path, array: np.ndarray, dtype: str = "uint8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
        dtype=dtype, crs="EPSG:32633", transform=from_origin(400000, 5000000, 10, 10),
    ) as dst:  # fmt: skip
        dst.write(array.astype(dtype))
    return path


@pytest.fixture
def scene(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    return {
        "image": _raster(tmp_path / "scene.tif", rng.uniform(0, 255, (4, 64, 64))),
        "truth": _raster(tmp_path / "scene_mask.tif", rng.integers(0, 2, (1, 64, 64))),
        "pred": _raster(tmp_path / "run" / "scene_best_prediction.tif", rng.integers(0, 2, (1, 64, 64))),
    }


def test_run_layers_image_truth_prediction_and_uncertainty(scene: dict[str, Path]) -> None:
    choice = LayerChoice((3, 1, 0), prediction_opacity=0.4)
    layers = run_layers(scene["image"], choice, prediction=scene["pred"], truth=scene["truth"])
    assert [(layer.name, layer.kind) for layer in layers] == [
        ("image (bands 4, 2, 1)", "rgb"), ("ground truth", "classes"), ("prediction", "classes"),
    ]  # fmt: skip
    assert layers[0].bands == (4, 2, 1) and layers[2].opacity == 0.4
    uncertainty = _raster(scene["pred"].with_name("scene_best_prediction_uncertainty.tif"),
                          np.random.default_rng(1).uniform(0, 1, (1, 64, 64)), "float32")  # fmt: skip
    layers = run_layers(scene["image"], choice, prediction=scene["pred"])
    assert (layers[-1].name, layers[-1].kind, layers[-1].path) == ("uncertainty", "continuous", uncertainty)
    uncertainty.unlink()  # what scene prediction writes: <stem>_entropy.tif or <stem>_margin.tif
    margin = _raster(
        scene["pred"].with_name("scene_best_prediction_margin.tif"), np.ones((1, 64, 64)), "float32"
    )
    layers = run_layers(scene["image"], choice, prediction=scene["pred"])
    assert (layers[-1].name, layers[-1].path) == ("uncertainty (margin: low = unsure)", margin)
    modal = run_layers(scene["image"], choice, modalities={"S2": scene["image"], "DEM": scene["truth"]})
    assert [(layer.name, layer.bands, layer.show) for layer in modal] == [
        ("S2 (bands 4, 2, 1)", (4, 2, 1), True), ("DEM (bands 1, 1, 1)", (1, 1, 1), False),
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="opacity"):
        RasterLayer("x", scene["pred"], "classes", opacity=1.5)


def test_large_raster_is_a_tile_layer_small_one_an_overlay(tmp_path: Path, scene: dict[str, Path]) -> None:
    import folium

    big = _raster(
        tmp_path / "big_prediction.tif", (np.arange(1500)[None, None, :] // 200 % 2).repeat(1500, 1)
    )
    tiles = TileSource(tmp_path / "static", "/app/static")
    m = folium.Map(tiles=None)
    drawn = add_raster_layer(m, RasterLayer("prediction", big, "classes", opacity=0.5), tiles, COLORS)
    small = add_raster_layer(m, RasterLayer("truth", scene["truth"], "classes"), tiles, COLORS)
    assert drawn.tiled and not small.tiled
    pyramid = drawn.pyramid
    assert (Path(pyramid.folder) / "pyramid.json").is_file() and Path(pyramid.folder).parent == tiles.root
    html = m.get_root().render()
    url = f"/app/static/tiles/{Path(pyramid.folder).name}/{{z}}/{{x}}/{{y}}.png"
    assert html.count("L.tileLayer(") == 1 and f'"{url}"' in html
    assert f'"maxNativeZoom": {pyramid.max_zoom}' in html and f'"minNativeZoom": {pyramid.min_zoom}' in html
    assert '"bounds": [' in html and '"opacity": 0.5' in html
    z = pyramid.max_zoom
    assert any((Path(pyramid.folder) / str(z)).rglob("*.png"))  # the finest level was written
    again = add_raster_layer(folium.Map(tiles=None), RasterLayer("p", big, "classes"), tiles, COLORS)
    assert again.pyramid == pyramid  # reused, not rewritten
    big.unlink()
    assert prune_tile_cache(tiles.root) == [Path(pyramid.folder)] and not Path(pyramid.folder).exists()


def test_layered_map_has_legends_and_no_external_url(scene: dict[str, Path], tmp_path: Path) -> None:
    _raster(scene["pred"].with_name("scene_best_prediction_uncertainty.tif"),
            np.random.default_rng(1).uniform(0, 1, (1, 64, 64)), "float32")  # fmt: skip
    layers = run_layers(
        scene["image"], LayerChoice((0, 1, 2)), prediction=scene["pred"], truth=scene["truth"]
    )
    offline = choose_base_map(load_settings({"GEOFT_HOME": str(tmp_path)}), probe=lambda url: False)
    m, drawn = layered_map(
        layers, JS, CSS, offline, TileSource(tmp_path / "static", "/app/static"), ["a", "b"], COLORS
    )
    html = m.get_root().render()
    assert html.count("L.imageOverlay(") == 4 and not any(d.tiled for d in drawn)
    assert "linear-gradient" in html and "uncertainty" in html  # the colour bar
    assert html.count("geoft-legend") == 2 and "L.tileLayer(" not in html
    assert external_urls(m) == []
    online = choose_base_map(load_settings({"GEOFT_HOME": str(tmp_path)}), probe=lambda url: True)
    m, _ = layered_map(layers[:1], JS, CSS, online, None)
    assert external_urls(m) == [OSM_URL] and "OpenStreetMap contributors" in m.get_root().render()


def test_base_map_choice_online_offline_and_none(tmp_path: Path) -> None:
    env = {"GEOFT_HOME": str(tmp_path)}
    settings = load_settings(env)
    assert settings.basemap_url == OSM_URL
    online = choose_base_map(settings, probe=lambda url: url == OSM_URL)
    assert online.url == OSM_URL and "OpenStreetMap" in online.attribution and "OpenStreetMap" in online.note
    offline = choose_base_map(settings, probe=lambda url: False)
    assert offline.url is None and "not reachable" in offline.note and "grey" in offline.note
    none = choose_base_map(load_settings({**env, "GEOFT_BASEMAP_URL": "none"}), probe=lambda url: 1 / 0)
    assert none.url is None and "none" in none.note  # never probed
    custom = load_settings({**env, "GEOFT_BASEMAP_URL": "http://tiles.local/{z}/{x}/{y}.png",
                            "GEOFT_BASEMAP_ATTRIBUTION": "ours"})  # fmt: skip
    assert (custom.basemap_url, custom.basemap_attribution) == ("http://tiles.local/{z}/{x}/{y}.png", "ours")
    with pytest.raises(ConfigError, match="GEOFT_BASEMAP_URL"):
        load_settings({**env, "GEOFT_BASEMAP_URL": "http://tiles.local/map.png"})
    calls = []
    for _ in range(3):
        cached_probe("http://cache.test/{z}/{x}/{y}.png", probe=lambda url: calls.append(url) or True)
    assert len(calls) == 1  # remembered


def test_probe_reaches_a_local_tile_server_only() -> None:
    class Tiles(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/slow/"):
                time.sleep(5)
            self.send_response(200 if self.path in ("/0/0/0.png", "/slow/0/0/0.png") else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert sample_tile_url("http://{s}.x/{z}/{x}/{y}{r}.png") == "http://a.x/0/0/0.png"
        assert probe_tiles(f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png")
        assert not probe_tiles(f"http://127.0.0.1:{port}/missing/{{z}}/{{x}}/{{y}}.png")
        started = time.monotonic()
        assert not probe_tiles(f"http://127.0.0.1:{port}/slow/{{z}}/{{x}}/{{y}}.png", timeout_s=0.5)
        assert time.monotonic() - started < 4  # the page does not wait for the 5 s answer
    finally:
        server.shutdown()
    assert not probe_tiles(f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png", timeout_s=0.5)  # closed


def test_compare_map_swipes_two_tile_layers_served_locally(scene: dict[str, Path], tmp_path: Path) -> None:
    static = tmp_path / "static"
    folder = install_side_by_side(static)
    script = (folder / "leaflet-side-by-side.js").read_text()
    assert (
        "L.Control.SideBySide" in script
        and "require(name)" in script
        and (folder / "range-icon.png").is_file()
    )
    other = _raster(tmp_path / "other" / "scene_last_prediction.tif", np.zeros((1, 64, 64)))
    tiles = TileSource(static, "/app/static")
    offline = choose_base_map(load_settings({"GEOFT_HOME": str(tmp_path)}), probe=lambda url: False)
    m = compare_map(
        RasterLayer("image", scene["image"], "rgb", (1, 2, 3)), RasterLayer("mine", scene["pred"], "classes"),
        RasterLayer("theirs", other, "classes"), JS, CSS, offline, tiles, COLORS, ["a", "b"],
    )  # fmt: skip
    html = m.get_root().render()
    assert html.count("L.tileLayer(") == 2 and "L.control.sideBySide(" in html
    assert "/app/static/leaflet-side-by-side/leaflet-side-by-side.js" in html
    assert "/app/static/leaflet-side-by-side/range.css" in html
    assert external_urls(m) == [] and not re.search(r"cdn\.|jsdelivr", html)


def test_other_predictions_of_the_same_image(tmp_path: Path) -> None:
    from types import SimpleNamespace

    for run_id in ("a", "b"):
        _raster(tmp_path / run_id / "predictions" / "scene_best_prediction.tif", np.zeros((1, 4, 4)))
    _raster(tmp_path / "b" / "predictions" / "other_best_prediction.tif", np.zeros((1, 4, 4)))
    runs = [SimpleNamespace(id=r, name=f"run {r}", run_dir=tmp_path / r) for r in ("a", "b")]
    assert other_predictions(runs, Path("x/scene.tif"), "a") == {
        "run b · best": tmp_path / "b" / "predictions" / "scene_best_prediction.tif"
    }


def test_predict_page_draws_a_large_prediction_as_tiles(home: Path) -> None:
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
    from tests.app.app_large_prediction import make_large_runs

    made = make_large_runs(home)
    at = AppTest.from_file(str(REPO / "pages" / "5_Predict.py"), default_timeout=240)
    at.run()
    assert not at.exception, at.exception
    captions = "\n".join(c.value for c in at.caption)
    assert "Drawn as map tiles at full resolution: image" in captions and "prediction (zoom" in captions
    assert "Base map: none (GEOFT_BASEMAP_URL=none)" in captions
    import json

    sources = {
        json.loads(p.read_text())["source"] for p in (REPO / "static" / "tiles").glob("*/pyramid.json")
    }
    written = {str(made[k].resolve()) for k in ("image", "big1", "big2")} & sources
    assert len(written) >= 2  # image and prediction
    assert [o for o in at.selectbox(key="pred_compare").options]  # the other run predicted it too
    at.toggle(key="pred_compare_on").set_value(True).run()
    assert not at.exception, at.exception
    assert "Drag the handle" in "\n".join(c.value for c in at.caption)


def _multimodal_run(home: Path) -> dict:
    """A multimodal segmentation run (S2 with 4 bands, S1 with 2) with a prediction of its val sample."""
    import yaml

    from geoft.app.run_store import RunStore

    rng = np.random.default_rng(2)
    data = home / "data" / "mm"
    _raster(data / "val" / "S2" / "t1_S2.tif", rng.uniform(0, 255, (4, 64, 64)))
    _raster(data / "val" / "S1" / "t1_S1.tif", rng.uniform(0, 255, (2, 64, 64)))
    _raster(data / "val" / "S1" / "t2_S1.tif", rng.uniform(0, 255, (2, 64, 64)))  # no S2: S1 only
    _raster(data / "val" / "labels" / "t1_mask.tif", rng.integers(0, 2, (1, 64, 64)))
    args = {
        "modalities": ["S2", "S1"], "num_classes": 2,
        "val_data_root": {"S2": str(data / "val" / "S2"), "S1": str(data / "val" / "S1")},
        "val_label_data_root": str(data / "val" / "labels"), "label_grep": "*_mask.tif",
        "image_grep": {"S2": "*_S2.tif", "S1": "*_S1.tif"},
        "dataset_bands": {"S2": ["BLUE", "GREEN", "RED", "NIR"], "S1": ["VV", "VH"]},
    }  # fmt: skip
    run_dir = home / "runs" / "mm1"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best-epoch=00.ckpt").write_bytes(b"not loaded")
    config = {
        "data": {"class_path": "geoft.datamodules.GenericMultiModalDataModule", "init_args": args},
        "model": {"class_path": "geoft.tasks.SemanticSegmentationTask", "init_args": {"class_names": ["a", "b"]}},
    }  # fmt: skip
    (run_dir / "submitted_config.yaml").write_text(yaml.safe_dump(config))
    _raster(run_dir / "predictions" / "t1_S2_best-epoch=00_prediction.tif", rng.integers(0, 2, (1, 64, 64)))
    _raster(run_dir / "predictions" / "t1_S2_best-epoch=00_prediction_entropy.tif",
            rng.uniform(0, 1, (1, 64, 64)), "float32")  # fmt: skip
    RunStore(home / "runs" / "runs.sqlite").add("mm1", "multimodal", run_dir, "cpu", status="completed")
    return args


def test_modality_chips_pair_by_name_key(tmp_path: Path) -> None:
    from geoft.app.scene_map import modality_chips

    args = _multimodal_run(tmp_path)
    root = tmp_path / "data" / "mm" / "val"
    assert modality_chips(args) == [
        ("val", {"S2": root / "S2" / "t1_S2.tif", "S1": root / "S1" / "t1_S1.tif"}, root / "labels" / "t1_mask.tif"),
        ("val", {"S1": root / "S1" / "t2_S1.tif"}, None),
    ]  # fmt: skip


def test_predict_page_shows_each_modality_as_a_layer(home: Path) -> None:
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
    _multimodal_run(home)
    at = AppTest.from_file(str(REPO / "pages" / "5_Predict.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert [str(o) for o in at.selectbox(key="pred_chip").options][0] == "val · t1_S2.tif"
    layers = next(c.value for c in at.caption if c.value.startswith("Layers"))
    assert "S2 (bands 3, 2, 1)" in layers and "S1 (bands 1, 1, 1)" in layers  # RED, GREEN, BLUE of S2
    assert "ground truth" in layers and "prediction" in layers and "uncertainty (entropy)" in layers
    assert at.slider(key="pred_unc_opacity").value == 0.7
    assert "drawn labels" not in layers
    assert at.selectbox(key="pred_band_red").format_func(2) == "3: RED"
    _draw_square(home / "data" / "mm" / "val" / "S2" / "t1_S2.tif", home / "labels" / "t1_S2.gpkg")
    at.run()
    assert not at.exception, at.exception
    assert "drawn labels" in next(c.value for c in at.caption if c.value.startswith("Layers"))


def _draw_square(scene: Path, out: Path) -> Path:
    """One square of class ``b`` inside ``scene``, saved as the Teach page saves drawn shapes."""
    from rasterio.warp import transform_bounds

    from geoft.datasets.drawn_labels import save_drawn_labels

    with rasterio.open(scene) as src:
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    dx, dy = (e - w) / 4, (n - s) / 4
    ring = [[w + dx, s + dy], [e - dx, s + dy], [e - dx, n - dy], [w + dx, n - dy], [w + dx, s + dy]]
    feature = {
        "type": "Feature",
        "properties": {"class": "b"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    return save_drawn_labels([feature], scene, ["a", "b"], out)


def test_drawn_labels_layer_in_class_colours(scene: dict[str, Path], tmp_path: Path) -> None:
    from geoft.app.scene_map import drawn_labels_file, drawn_labels_layer

    assert drawn_labels_file(tmp_path, scene["image"]) is None
    _draw_square(scene["image"], tmp_path / "labels" / "scene.gpkg")
    path = drawn_labels_file(tmp_path, scene["image"])
    assert path == tmp_path / "labels" / "scene.gpkg"
    layers = run_layers(scene["image"], LayerChoice((0, 1, 2)))
    offline = choose_base_map(load_settings({"GEOFT_HOME": str(tmp_path)}), probe=lambda url: False)
    vector = drawn_labels_layer(path, scene["image"], ["a", "b"], COLORS)
    m, _ = layered_map(layers, JS, CSS, offline, None, ["a", "b"], COLORS, vectors=[vector])
    html = m.get_root().render()
    assert "L.geoJson" in html and '"class": "b"' in html and "#ff0000" in html  # class b's colour
