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
]


def test_every_page_renders_offline(page_and_traffic, shoot, settle):
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
