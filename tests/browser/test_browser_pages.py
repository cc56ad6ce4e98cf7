"""Every page in headless Chromium: renders without a traceback, zero requests leave the machine."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

# (url path, screenshot name, text shown once the page has fully rendered)
PAGES = [
    ("", "home", "5 · Predict / Map"),
    ("Data", "data", "Choose a dataset above."),
    ("Model", "model", "Full configuration"),
    ("Train", "train", "No runs yet."),
    ("Runs", "runs", "No runs yet."),
    ("Predict", "predict", "No trained run with a checkpoint yet"),
    ("Similar", "similar", "No trained run with a checkpoint yet"),
    ("Teach", "teach", "Path of the GeoTIFF"),
]


def test_every_page_renders_offline(page_and_traffic, shoot, settle, publish):
    page, traffic, server = page_and_traffic
    for path, name, marker in PAGES:
        page.goto(f"{server.url}/{path}")
        settle(page)
        page.get_by_text(marker).first.wait_for(timeout=90_000)
        settle(page)
        assert page.locator("[data-testid='stException']").count() == 0, f"traceback on {name}"
        shoot(page, f"page-{name}")
    assert traffic.external == [], traffic.external
    assert traffic.local_count > 10
    # the Model page's picture is the one with the demo dataset chosen (test_data_page_with_demo_dataset)
    publish(*(f"page-{name}" for _, name, _ in PAGES if name != "model"))


def test_data_page_with_demo_dataset(page_and_traffic, shoot, settle, publish):
    page, traffic, server = page_and_traffic
    page.goto(f"{server.url}/Data")
    settle(page)
    page.get_by_text("Demo dataset").click()
    settle(page)
    page.get_by_role("button", name="Generate the demo dataset").click()
    page.get_by_role("button", name="Compute statistics").wait_for(timeout=120_000)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 8", timeout=60_000
    )
    settle(page)
    assert page.locator("[data-testid='stException']").count() == 0  # gallery: chips and their masks
    page.get_by_label("Class 0 name").wait_for(timeout=30_000)
    assert page.get_by_label("Class 0 name").input_value() == "water"  # class names come with the dataset
    shoot(page, "page-data-demo")
    assert traffic.external == [], traffic.external
    publish("page-data-demo", "page-model")
