"""A 3-trial sweep in Chromium: upload a tiny config on Train, start a sweep, see its trials on Runs."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.browser


def test_sweep_of_three_trials_from_train_to_runs(page_and_traffic, shoot, settle, tiny_demo_workspace):
    page, traffic, server = page_and_traffic
    workspace = tiny_demo_workspace(
        server.home / "data" / "ws", {"max_epochs": 1, "accelerator": "cpu"}, absolute_roots=True
    )
    page.goto(f"{server.url}/Train")
    settle(page)
    page.locator("input[type='file']").first.set_input_files(str(workspace / "config.yaml"))
    page.get_by_text("Config checked and loaded.").wait_for(timeout=180_000)
    page.get_by_text("Sweep: search hyperparameters").click()
    page.get_by_label("Batch sizes").fill("1, 2")
    page.get_by_label("Trials").fill("3")
    page.get_by_label("Epochs per trial").fill("1")
    page.get_by_role("button", name="Start sweep").click()
    page.get_by_text("sweep-my-run").first.wait_for(timeout=180_000)  # the Train page follows the sweep job
    deadline = time.time() + 600
    while True:
        page.goto(f"{server.url}/Runs")
        settle(page)
        if page.get_by_text("Best: trial").count() and page.get_by_text("3 trials").count():
            break
        assert time.time() < deadline, "the sweep did not show 3 trials and a best trial in 10 min"
        time.sleep(5)
    page.get_by_role("button", name="Train the best config").wait_for(timeout=60_000)
    settle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "runs-sweep")
    assert traffic.external == [], traffic.external
