"""In Chromium: a large prediction drawn as a tile layer (zooming in loads finer tiles from
``/app/static/tiles``, every one answered 200), and the swipe comparison of two runs; nothing leaves the machine."""

from __future__ import annotations

import re

import pytest

from tests.app.app_large_prediction import make_large_runs
from tests.browser.test_browser_detection_similar import _in_frames, _wait_for

pytestmark = pytest.mark.browser
TILE_URL = re.compile(r"/app/static/tiles/\w+/(\d+)/\d+/\d+\.png$")


def test_tile_layer_zooms_and_compare_swipes(page_and_traffic, shoot, settle, publish):
    page, traffic, server = page_and_traffic
    make_large_runs(server.home, size=2000)
    tiles: list[tuple[int, int]] = []  # (zoom, status) of every tile the browser fetched

    def record(response) -> None:
        found = TILE_URL.search(response.url)
        if found:
            tiles.append((int(found.group(1)), response.status))

    page.on("response", record)
    page.goto(f"{server.url}/Predict")
    page.get_by_text("Drawn as map tiles at full resolution").first.wait_for(timeout=180_000)
    settle(page)
    _wait_for(lambda: len(tiles) >= 4, 240, "the first tiles", server)  # a busy machine loads the map slowly
    frame = _in_frames(page, ".leaflet-tile-container")[0]
    first = max(z for z, _ in tiles)
    for _ in range(3):
        frame.locator(".leaflet-control-zoom-in").click()
        page.wait_for_timeout(700)
    _wait_for(lambda: max(z for z, _ in tiles) >= first + 2, 120, "finer tiles after zooming in", server)
    assert all(status == 200 for _, status in tiles), [t for t in tiles if t[1] != 200]
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "predict-tiles")

    page.get_by_text("Show the swipe comparison").click()
    _wait_for(lambda: bool(_in_frames(page, ".leaflet-sbs-range")), 240, "the swipe control", server)
    swipe = _in_frames(page, ".leaflet-sbs-range")[0]
    assert swipe.locator(".leaflet-sbs-divider").count() == 1
    _wait_for(lambda: swipe.locator(".leaflet-tile-loaded").count() > 0, 120, "tiles under the swipe", server)
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "predict-compare")
    publish("predict-tiles", "predict-compare")
    assert all(status == 200 for _, status in tiles), [t for t in tiles if t[1] != 200]
    assert traffic.external == [], f"requests left the machine: {traffic.external}"
