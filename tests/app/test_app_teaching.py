"""Teach by drawing without a browser: the map's drawings to classes to a GeoPackage and back, the
configs of round 1 and round 2, the map's local Leaflet.draw, and the page through AppTest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geoft.app.maps import external_urls, read_for_display
from geoft.app.teach_map import install_leaflet_draw, leaflet_draw_urls, teach_map
from geoft.app.teaching import (
    INITIAL_WEIGHTS,
    classify_drawings,
    labels_path,
    saved_features,
    store_drawings,
    teach_config,
)
from geoft.datasets.drawn_labels import write_label_chips
from geoft.errors import ConfigError

CLASSES = ["land", "water"]
REPO = Path(__file__).resolve().parents[2]


def make_scene(path: Path, size: int = 64) -> Path:
    """A 3-band UTM scene: water (dark) on the left half, land on the right."""
    rng = np.random.default_rng(0)
    data = rng.integers(900, 1100, size=(3, size, size)).astype(np.uint16)
    data[:, :, : size // 2] //= 4
    profile = {
        "driver": "GTiff", "height": size, "width": size, "count": 3, "dtype": "uint16",
        "crs": "EPSG:32631", "transform": from_origin(600000, 5000000, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("RED", "GREEN", "BLUE")
    return path


def drawn_square(scene: Path, row: int, col: int, side: int, cls: str | None = None) -> dict[str, Any]:
    """A square the way Leaflet.draw returns it: WGS84 polygon, empty properties unless saved before."""
    from rasterio.warp import transform as reproject_points

    with rasterio.open(scene) as src:
        corners = [
            src.transform * (c, r)
            for c, r in [(col, row), (col + side, row), (col + side, row + side), (col, row + side)]
        ]
        lon, lat = reproject_points(src.crs, "EPSG:4326", [x for x, _ in corners], [y for _, y in corners])
    ring = [[x, y] for x, y in zip(lon, lat)]
    return {
        "type": "Feature",
        "properties": {} if cls is None else {"class": cls},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


def test_drawings_take_the_next_class_unless_they_carry_one() -> None:
    point = {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [3.0, 45.0]}}
    saved = {**point, "properties": {"class": "land"}}
    classes = [f["properties"]["class"] for f in classify_drawings([saved, point], CLASSES, "water")]
    assert classes == ["land", "water"]
    with pytest.raises(ConfigError, match="not one of"):
        classify_drawings([point], CLASSES, "forest")


def test_drawings_round_trip_through_the_scene_crs_geopackage(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "scene.tif")
    path = labels_path(tmp_path / "home", scene)
    assert path == tmp_path / "home" / "labels" / "scene.gpkg"
    assert not store_drawings(None, scene, CLASSES, "water", path)  # the map has not reported yet
    first = [drawn_square(scene, 4, 4, 8)]
    assert store_drawings(first, scene, CLASSES, "water", path)
    import geopandas

    frame = geopandas.read_file(path)
    assert frame.crs.to_epsg() == 32631 and list(frame["class"]) == ["water"]
    assert frame.geometry[0].bounds == pytest.approx((600040, 4999880, 600120, 4999960), abs=1e-3)
    # the map reports the saved shape (with its class) and a new one, drawn with "land" chosen
    saved = saved_features(path, scene, CLASSES)
    assert [f["properties"]["class"] for f in saved] == ["water"]
    assert not store_drawings(saved, scene, CLASSES, "land", path)  # nothing changed: no rewrite
    assert store_drawings([*saved, drawn_square(scene, 4, 40, 8)], scene, CLASSES, "land", path)
    assert [f["properties"]["class"] for f in saved_features(path, scene, CLASSES)] == ["water", "land"]
    # deleting every shape removes the file
    assert store_drawings([], scene, CLASSES, "land", path)
    assert not path.exists() and saved_features(path, scene, CLASSES) == []


def _chips(tmp_path: Path) -> tuple[Path, Any]:
    scene = make_scene(tmp_path / "scene.tif")
    path = labels_path(tmp_path / "home", scene)
    store_drawings(
        [drawn_square(scene, 4, 4, 8, "water"), drawn_square(scene, 4, 40, 8, "land")],
        scene,
        CLASSES,
        "land",
        path,
    )
    return scene, write_label_chips(scene, path, CLASSES, tmp_path / "chips", chip_size=32)


def test_round_one_trains_a_preset_on_the_sparse_chips(tmp_path: Path) -> None:
    scene, chips = _chips(tmp_path)
    config = teach_config(chips, scene, CLASSES, max_epochs=2)
    data, model = config["data"], config["model"]["init_args"]
    assert data["class_path"].endswith("GenericNonGeoSegmentationDataModule")
    args = data["init_args"]
    assert args["train_data_root"] == args["val_data_root"] == str(chips.images)
    assert args["train_label_data_root"] == str(chips.labels)
    assert args["ignore_index"] == model["ignore_index"] == -1
    assert args["dataset_bands"] == ["RED", "GREEN", "BLUE"] and len(args["means"]) == 3
    assert model["class_names"] == CLASSES and config["trainer"]["max_epochs"] == 2
    assert not config["trainer"].get("callbacks")


def test_round_two_starts_from_the_previous_best_checkpoint(tmp_path: Path) -> None:
    scene, chips = _chips(tmp_path)
    first = teach_config(chips, scene, CLASSES)
    first["data"]["init_args"]["test_data_root"] = "/elsewhere/test"
    ckpt = tmp_path / "run1" / "best.ckpt"
    second = teach_config(chips, scene, CLASSES, base_config=first, initial_checkpoint=ckpt, max_epochs=3)
    callbacks = second["trainer"]["callbacks"]
    assert callbacks == [{"class_path": INITIAL_WEIGHTS, "init_args": {"ckpt_path": str(ckpt)}}]
    assert "test_data_root" not in second["data"]["init_args"]  # only the chips
    assert second["model"] == first["model"] and second["trainer"]["max_epochs"] == 3
    third = teach_config(chips, scene, CLASSES, base_config=second, initial_checkpoint=tmp_path / "b.ckpt")
    assert [c["init_args"]["ckpt_path"] for c in third["trainer"]["callbacks"]] == [str(tmp_path / "b.ckpt")]
    with pytest.raises(ConfigError, match="the run's classes"):
        teach_config(chips, scene, ["a", "b"], base_config=first)


def test_the_map_draws_with_the_apps_own_leaflet_draw(tmp_path: Path) -> None:
    scene, _ = _chips(tmp_path)
    static = install_leaflet_draw(tmp_path / "static")
    assert (static / "leaflet.draw.js").is_file() and (static / "images" / "spritesheet.svg").is_file()
    draw_js, draw_css = leaflet_draw_urls("geoft")
    assert draw_js == "/geoft/app/static/leaflet-draw/leaflet.draw.js"
    features = saved_features(labels_path(tmp_path / "home", scene), scene, CLASSES)
    urls = ("/app/static/leaflet/leaflet.js", "/app/static/leaflet/leaflet.css", draw_js, draw_css)
    m = teach_map(read_for_display(scene), [0, 1, 2], urls, features, CLASSES, [(0, 128, 0), (0, 0, 255)])
    html = m.get_root().render()
    assert external_urls(m) == []
    assert "L.Control.Draw" in html and draw_js in html and "cdnjs" not in html
    assert html.count('"class": "water"') == 1 and html.count('"class": "land"') == 1


class FakeMap:
    """Stands in for streamlit-folium's browser component: returns what the map would have reported."""

    def __init__(self) -> None:
        self.drawings: list[dict[str, Any]] | None = None
        self.maps: list[Any] = []

    def __call__(self, m: Any, **kwargs: Any) -> dict[str, Any]:
        self.maps.append(m)
        return {"all_drawings": self.drawings}


@pytest.fixture
def fake_map(monkeypatch: pytest.MonkeyPatch) -> FakeMap:
    import streamlit_folium

    fake = FakeMap()
    monkeypatch.setattr(streamlit_folium, "st_folium", fake)
    return fake


def test_the_page_saves_drawings_and_submits_a_round(home: Path, tmp_path: Path, fake_map: FakeMap) -> None:
    from streamlit.testing.v1 import AppTest

    from geoft.app.run_store import RunStore
    from geoft.app.settings import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    scene = make_scene(settings.data_roots[0] / "scene.tif")
    at = AppTest.from_file(str(REPO / "pages" / "7_Teach.py"), default_timeout=120)
    at.session_state["teach_classes"] = "land, water"
    at.run()
    assert not at.exception and not fake_map.maps  # no scene yet
    at.text_input(key="teach_path").input(str(scene)).run()
    assert not at.exception and fake_map.maps  # the map is shown, no shape yet
    at.radio(key="teach_class").set_value("water")
    fake_map.drawings = [drawn_square(scene, 4, 4, 8)]
    at.run()
    fake_map.drawings = [drawn_square(scene, 4, 4, 8, "water"), drawn_square(scene, 4, 40, 8)]
    at.radio(key="teach_class").set_value("land").run()
    assert not at.exception
    saved = saved_features(settings.home / "labels" / "scene.gpkg", scene, CLASSES)
    assert [f["properties"]["class"] for f in saved] == ["water", "land"]
    assert "Saved shapes: 2 (land 1, water 1)" in "\n".join(c.value for c in at.caption)
    assert "L.Control.Draw" in fake_map.maps[-1].get_root().render()

    at.number_input(key="teach_epochs").set_value(1)
    at.button(key="teach_train").click().run()
    assert not at.exception, at.exception
    [run] = RunStore(settings.store_path).list()
    assert "teach:scene" in run.tags and run.name == "teach-scene-1"
    import yaml

    config = yaml.safe_load(run.submitted_config_path.read_text())
    assert config["data"]["init_args"]["ignore_index"] == -1
    assert (
        Path(config["data"]["init_args"]["train_data_root"]).parent
        == settings.home / "labels" / "scene_rounds" / "round_1"
    )
    from geoft.app.jobs import JobRunner

    JobRunner(RunStore(settings.store_path), settings.runs_root).stop(
        run.id
    )  # the real training is the e2e test's


def test_a_finished_round_adds_prediction_and_uncertainty_layers(tmp_path: Path) -> None:
    from geoft.app.maps import Raster
    from geoft.app.teach_map import uncertainty_pixels

    scene = make_scene(tmp_path / "scene.tif")
    image = read_for_display(scene)
    classes = Raster(
        (np.arange(64)[None, None, :] >= 32).repeat(64, 1).astype(np.uint8), image.crs, image.transform, 255
    )
    entropy = np.zeros((1, 64, 64), np.float32)
    entropy[:, :, 28:36] = np.log(2)  # unsure along the border between the classes
    spread = Raster(entropy, image.crs, image.transform, None)
    rgba, _ = uncertainty_pixels(spread, "entropy", max_size=64)
    unsure, sure = rgba[2:-2, 30:33, 3], rgba[2:-2, 2:20, 3]
    assert unsure.min() > 200 and sure.max() < 60  # opaque red where unsure, faint where sure
    margin, _ = uncertainty_pixels(
        Raster(1 - entropy / np.log(2), image.crs, image.transform, None), "margin", 64
    )
    assert margin[2:-2, 30:33, 3].min() > 200 and margin[2:-2, 2:20, 3].max() < 60  # a small margin is unsure
    urls = ("/app/static/leaflet/leaflet.js", "/app/static/leaflet/leaflet.css", *leaflet_draw_urls())
    m = teach_map(
        image, [0, 1, 2], urls, [], CLASSES, [(0, 128, 0), (0, 0, 255)], classes, (spread, "entropy")
    )
    html = m.get_root().render()
    assert '"prediction"' in html and '"uncertainty (entropy)"' in html and external_urls(m) == []


def test_the_page_is_behind_the_login(home: Path, fake_map: FakeMap) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages" / "7_Teach.py"), default_timeout=60)
    at.secrets["GEOFT_APP_PASSWORD"] = "pw"
    at.run()
    assert not at.exception
    assert "teach_path" not in [t.key for t in at.text_input] and not fake_map.maps
