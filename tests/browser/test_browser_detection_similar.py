"""In Chromium: a detection run's boxes on the Predict map (class and score on hover), and a click on a
chip footprint on the Similar page selecting it; nothing leaves the machine."""

from __future__ import annotations

import time

import pytest

from tests.app.app_detection_run import train_detection_run

pytestmark = pytest.mark.browser


def _in_frames(page, selector: str) -> list:
    """The frames (the maps' iframes) holding ``selector``."""
    return [f for f in page.frames if f.locator(selector).count()]


def _wait_for(predicate, timeout_s: float, what: str, server) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{server.log_text()[-3000:]}")


def test_detection_map_and_click_to_similar_chips(page_and_traffic, shoot, settle):
    page, traffic, server = page_and_traffic
    train_detection_run(server.home)  # the pages read the run store on every run
    page.goto(f"{server.url}/Predict")
    page.get_by_role("button", name="Predict", exact=True).wait_for(timeout=90_000)
    settle(page)
    page.get_by_role("button", name="Predict", exact=True).click()
    page.get_by_role("button", name="Download detections (GeoJSON)").wait_for(timeout=120_000)
    page.get_by_text("detections score at least").first.wait_for(timeout=30_000)
    # the slider at 0.5 may hide every box of a two-step model: the page says how many it shows
    _wait_for(lambda: bool(_in_frames(page, ".leaflet-image-layer")), 60, "the detection map", server)
    frame = _in_frames(page, ".leaflet-image-layer")[0]
    assert frame.locator(".geoft-legend").count() == 1
    boxes = frame.locator("path.leaflet-interactive")
    assert boxes.count() >= 1  # every generated chip 0 has an object: its ground truth at least
    box = boxes.first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    frame.locator(".leaflet-tooltip").first.wait_for(timeout=10_000)
    assert "object" in frame.locator(".leaflet-tooltip").first.inner_text()  # the class name
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "detection-map")

    page.goto(f"{server.url}/Similar")
    page.get_by_role("button", name="Compute embeddings").wait_for(timeout=90_000)
    settle(page)
    page.get_by_role("button", name="Compute embeddings").click()
    page.get_by_text("Nearest to chip_000.tif").first.wait_for(timeout=120_000)
    settle(page)
    _wait_for(lambda: len(_in_frames(page, "path.leaflet-interactive")) > 0, 60, "the chip map", server)
    chips = _in_frames(page, "path.leaflet-interactive")[0].locator("path.leaflet-interactive")
    assert chips.count() == 4
    # a DOM click on the fourth footprint (chip_003), which Leaflet handles as a user's click; Playwright's
    # synthetic mouse clicks did not reach Leaflet inside the streamlit-folium iframe here
    chips.nth(3).evaluate(
        "p => { const r = p.getBoundingClientRect(); p.dispatchEvent(new MouseEvent('click',"
        " {bubbles: true, clientX: r.x + r.width / 2, clientY: r.y + r.height / 2})); }"
    )
    page.get_by_text("Nearest to chip_003.tif").first.wait_for(timeout=60_000)
    settle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "similar-chips")
    assert traffic.external == [], f"requests left the machine: {traffic.external}"
