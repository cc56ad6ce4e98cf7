"""The detection preset in headless Chromium: the detection demo on the Data page, Faster R-CNN + ResNet18
on the Model page, a run started on the Train page and its mAP shown when it finishes."""

from __future__ import annotations

import time

import pytest

from geoft.app.run_store import RunStore

pytestmark = pytest.mark.browser


def _no_traceback(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def test_detection_demo_to_a_finished_run(page_and_traffic, shoot, settle):
    page, traffic, server = page_and_traffic
    page.goto(f"{server.url}/Data")
    settle(page)
    page.get_by_text("Demo dataset").click()
    settle(page)
    page.get_by_text("Object detection", exact=True).click()
    settle(page)
    page.get_by_role("button", name="Generate the demo dataset").click()
    page.get_by_text("Most objects in one image").wait_for(timeout=120_000)
    settle(page)
    _no_traceback(page)
    assert page.get_by_text("Annotations to train on").count() == 1  # GeoJSON, COCO and YOLO found
    shoot(page, "detection-1-data")

    page.goto(f"{server.url}/Model")
    page.get_by_text("Full configuration").wait_for(timeout=90_000)
    settle(page)
    page.get_by_text("None: random weights").click()  # offline: no published weights to download
    settle(page)
    assert page.get_by_text("ObjectDetectionTask").count() >= 1  # in the YAML shown
    page.get_by_role("button", name="Use this config for training").click()

    start = page.get_by_role("button", name="Start training")
    start.wait_for(timeout=240_000)
    settle(page)
    start.click()  # the form's 3 epochs: a few seconds each on 24 chips of 64 x 64 px
    store = RunStore(server.home / "runs" / "runs.sqlite")
    deadline = time.time() + 600
    while time.time() < deadline and (not store.list() or store.list()[0].is_active):
        time.sleep(1)
    run = store.list()[0]
    assert run.status == "completed", f"{run.status}: {run.error}\n{server.log_text()[-2000:]}"
    assert "val/mAP" in run.best_metrics
    page.get_by_text("Validation: best and last").wait_for(timeout=120_000)
    settle(page)
    _no_traceback(page)
    assert page.get_by_text("val/mAP_50").count() >= 1
    shoot(page, "detection-2-trained")
    assert traffic.external == [], traffic.external
