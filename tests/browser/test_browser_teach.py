"""In Chromium: the Teach page's map loads the app's own Leaflet.draw, a rectangle drawn on it is saved
with the chosen class to the scene's GeoPackage, and nothing leaves the machine."""

from __future__ import annotations

import time

import pytest

from tests.app.test_app_teaching import make_scene

pytestmark = pytest.mark.browser

# a rectangle over the scene's top-left quarter, created the way Leaflet.draw's toolbar creates one
# (Playwright's synthetic mouse drags do not reach Leaflet inside streamlit-folium's iframe)
DRAW_RECTANGLE = """() => {
  const b = window.map.getBounds(), c = b.getCenter();
  const layer = L.rectangle([[c.lat, b.getWest()], [b.getNorth(), c.lng]]);
  window.map.fire(L.Draw.Event.CREATED, {layer: layer, layerType: 'rectangle'});
}"""


def test_a_rectangle_drawn_on_the_teach_map_is_saved_with_its_class(page_and_traffic, settle, shoot):
    page, traffic, server = page_and_traffic
    (server.home / "data").mkdir(parents=True, exist_ok=True)
    scene = make_scene(server.home / "data" / "lake.tif", size=64)
    page.goto(f"{server.url}/Teach")
    path_box = page.get_by_test_id("stTextInputField").and_(
        page.get_by_label("Path of the GeoTIFF", exact=True)
    )
    path_box.wait_for(timeout=90_000)
    settle(page)
    path_box.fill(str(scene))
    path_box.press("Enter")
    settle(page)
    page.get_by_text("water", exact=True).first.click()  # the class of the next shapes
    settle(page)
    deadline = time.time() + 60
    frames = []
    while time.time() < deadline and not frames:
        frames = [f for f in page.frames if f.locator(".leaflet-draw-draw-rectangle").count()]
        time.sleep(1)
    assert frames, f"no Leaflet.draw toolbar on the map\n{server.log_text()[-3000:]}"
    frames[0].evaluate(DRAW_RECTANGLE)
    saved = server.home / "labels" / "lake.gpkg"
    deadline = time.time() + 60
    while time.time() < deadline and not saved.is_file():
        time.sleep(1)
    assert saved.is_file(), server.log_text()[-3000:]
    import geopandas

    frame = geopandas.read_file(saved)
    assert list(frame["class"]) == ["water"] and frame.crs.to_epsg() == 32631
    settle(page)
    page.get_by_text("Saved shapes: 1 (not_water 0, water 1)").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "teach-drawn")
    assert traffic.external == [], f"requests left the machine: {traffic.external}"
