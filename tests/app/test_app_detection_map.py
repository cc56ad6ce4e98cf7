"""Detections on the offline map: layers by class, score filtering, popups, CRS; the Predict page end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import box

from geoft.app.detection_layers import (
    above_score,
    build_detection_map,
    detection_layer,
    read_detections,
    truth_objects,
)
from geoft.app.maps import Raster, external_urls, leaflet_urls
from geoft.datasets.detection_demo import CRS, generate_detection_chips
from geoft.vector_writer import geometries_frame
from tests.app.app_detection_run import train_detection_run, use_home

REPO = Path(__file__).resolve().parents[2]
JS, CSS = leaflet_urls()
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _utm_frame():
    """Three boxes in UTM 14N: 500000 m E is the zone's central meridian (-99 deg), 4e6 m N ~36.1 deg N."""
    boxes = [box(500000, 3999000, 500300, 3999300), box(501000, 3998000, 501090, 3998090), box(0, 0, 1, 1)]
    boxes[2] = box(502000, 3997000, 502030, 3997030)
    return geometries_frame(boxes, [0, 1, 1], [0.9, 0.4, 0.7], "EPSG:32614", ["ship", "boat"])


def _features(layer) -> list[dict]:
    return layer.data["features"]


def test_layer_is_in_wgs84_where_the_boxes_are() -> None:
    layer = detection_layer(_utm_frame(), [RED, BLUE], "detections")
    first = np.array(_features(layer)[0]["geometry"]["coordinates"][0])
    assert first[:, 0].min() == pytest.approx(-99.0, abs=1e-3)  # west edge on the central meridian
    assert first[:, 1].max() == pytest.approx(36.13, abs=0.01)
    assert first[:, 0].max() == pytest.approx(-99.0 + 300 / 90_000, abs=5e-4)  # 300 m east


def test_colours_follow_the_class_and_popups_show_class_and_score() -> None:
    layer = detection_layer(_utm_frame(), [RED, BLUE], "detections")
    styles = [layer.style_function(f) for f in _features(layer)]
    assert [s["color"] for s in styles] == ["#ff0000", "#0000ff", "#0000ff"]
    assert all(s["fillOpacity"] > 0 for s in styles)
    props = [f["properties"] for f in _features(layer)]
    assert [(p["class_name"], p["score"]) for p in props] == [("ship", 0.9), ("boat", 0.4), ("boat", 0.7)]
    for kind in ("GeoJsonPopup", "GeoJsonTooltip"):
        shown = [c for c in layer._children.values() if type(c).__name__ == kind]
        assert len(shown) == 1 and shown[0].fields == ["class_name", "score"]
    truth = detection_layer(_utm_frame(), [RED, BLUE], "ground truth", truth=True)
    assert truth.style_function(_features(truth)[0])["fillOpacity"] == 0.0


def test_score_threshold_filters_and_the_map_stays_offline() -> None:
    frame = _utm_frame()
    assert above_score(frame, 0.5)["score"].tolist() == [0.9, 0.7]
    assert len(above_score(frame, 0.95)) == 0 and len(above_score(frame, 0.0)) == 3
    rng = np.random.default_rng(0)
    from rasterio.transform import from_origin

    image = Raster(
        rng.uniform(0, 1, (3, 40, 40)).astype(np.float32),
        "EPSG:32614",
        from_origin(499900, 3999400, 100, 100),
        None,
    )
    m = build_detection_map(
        image, [0, 1, 2], JS, CSS, frame, ["ship", "boat"], [RED, BLUE], score_threshold=0.5
    )
    html = m.get_root().render()
    assert external_urls(m) == []
    assert re.findall(r"https?://", html.replace("http-equiv", "")) == []
    assert "geoft-legend" in html and "L.imageOverlay" in html
    assert html.count('"score": 0.9') == 1 and '"score": 0.4' not in html  # the 0.4 box is filtered out
    assert "ground truth" not in html
    with_truth = (
        build_detection_map(
            image, [0, 1, 2], JS, CSS, frame, ["ship", "boat"], [RED, BLUE], truth=frame.iloc[:1]
        )
        .get_root()
        .render()
    )
    assert with_truth.count("L.geoJson") == 2 and '"ground truth"' in with_truth
    low = build_detection_map(
        image, [0, 1, 2], JS, CSS, frame, ["ship", "boat"], [RED, BLUE], score_threshold=0.3
    )
    assert '"score": 0.4' in low.get_root().render()


def test_ground_truth_lands_on_the_generators_objects(tmp_path: Path) -> None:
    truth = generate_detection_chips(tmp_path, n=2, size=40, num_classes=2, seed=3)
    chip = truth[0]
    frame = truth_objects(tmp_path / "labels" / f"{chip.image.stem}.geojson", chip.image, ["a", "b"], "class")
    assert str(frame.crs) == CRS or frame.crs.to_epsg() == 32632
    assert frame["class"].tolist() == chip.labels
    a, _, c, _, e, f = chip.transform
    for geometry, (x0, y0, x1, y1) in zip(frame.geometry, chip.boxes, strict=True):
        np.testing.assert_allclose(
            geometry.bounds, [c + a * x0, f + e * y1, c + a * x1, f + e * y0], atol=1e-6
        )
    yolo = truth_objects(tmp_path / "yolo" / f"{chip.image.stem}.txt", chip.image, ["a", "b"])
    np.testing.assert_allclose(yolo.total_bounds, frame.total_bounds, atol=a * 1e-3)


def test_empty_detection_file_reads_as_an_empty_layer(tmp_path: Path) -> None:
    from geoft.vector_writer import write_vectors

    write_vectors(geometries_frame([], [], [], CRS, None), tmp_path / "none", ["geojson"])
    frame = read_detections(tmp_path / "none.geojson")
    assert len(frame) == 0 and {"class", "score"} <= set(frame.columns)
    layer = detection_layer(frame.set_crs(CRS, allow_override=True), [RED], "detections")
    assert _features(layer) == []
    image = Raster(np.ones((3, 8, 8), np.float32), CRS, (10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0), None)
    m = build_detection_map(image, [0, 1, 2], JS, CSS, frame, ["a"], [RED])
    assert "L.geoJson" in m.get_root().render()  # renders, with nothing to click


# -- the Predict page with a tiny trained detection run -----------------------------------------------


@pytest.fixture(scope="module")
def detection_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dethome")
    train_detection_run(home)
    return home


def test_predict_page_draws_detections_with_a_score_slider(
    detection_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
    use_home(monkeypatch, detection_home)
    at = AppTest.from_file(str(REPO / "pages" / "5_Predict.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    chips = [str(o) for o in at.selectbox(key="pred_chip").options]
    assert any("chip_000.tif" in c for c in chips)
    at.button(key="pred_go").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    written = list((detection_home / "runs" / "det1" / "predictions").glob("*_detections.geojson"))
    assert len(written) == 1
    frame = read_detections(written[0])
    assert frame.crs is not None and frame.crs.to_epsg() == 32632  # the chip's CRS
    assert len(frame) > 0  # boxes to draw (the model keeps every score)
    assert at.slider(key="pred_score").value == 0.5  # the run's score_threshold
    caption = next(c.value for c in at.caption if "detections score at least" in c.value)
    assert caption.startswith(f"{(frame['score'] >= 0.5).sum()} of {len(frame)} ")
    modified = written[0].stat().st_mtime_ns
    at.slider(key="pred_score").set_value(0.0).run()
    assert not at.exception, at.exception
    caption = next(c.value for c in at.caption if "detections score at least" in c.value)
    assert caption.startswith(f"{len(frame)} of {len(frame)} ")
    assert written[0].stat().st_mtime_ns == modified  # filtered, not predicted again
    assert any(b.label == "Download detections (GeoJSON)" for b in at.get("download_button"))
