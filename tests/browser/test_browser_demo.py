"""End to end in headless Chromium: the demo from the home page to a trained model on the map,
stop/resume of a job and a reload during training; zero requests leave the machine."""

from __future__ import annotations

import time

import pytest

from geoft.app.run_store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _leaflet_image_layers(page) -> int:
    return sum(frame.locator(".leaflet-image-layer").count() for frame in page.frames)


def _wait_for(predicate, timeout_s: float, what: str, server=None) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    log = server.log_text()[-3000:] if server else ""
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{log}")


def _demo_run(server):
    runs = RunStore(server.home / "runs" / "runs.sqlite").list(tag="demo")
    return runs[0] if runs else None


def test_demo_from_home_to_map_offline(page_and_traffic, shoot, settle, publish):
    page, traffic, server = page_and_traffic
    page.goto(server.url)
    settle(page)
    shoot(page, "demo-0-home")
    page.get_by_role("button", name="Run the demo").click()
    _wait_for(lambda: _demo_run(server) is not None, 120, "the demo job to be submitted", server)
    _wait_for(
        lambda: page.get_by_text("epoch").count() > 0 or _demo_run(server).status != "running",
        180,
        "progress",
    )
    shoot(page, "demo-1-training")
    _wait_for(lambda: not _demo_run(server).is_active, 600, "the demo training to finish", server)
    run = _demo_run(server)
    assert run.status == "completed", f"{run.status}: {run.error}\n{run.log_path.read_text()[-2000:]}"
    _wait_for(
        lambda: _leaflet_image_layers(page) >= 2, 180, "the map overlays (.leaflet-image-layer)", server
    )
    page.wait_for_timeout(1500)
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "demo-2-map")
    # the Runs page: history with best metrics and per-class scores of the finished run
    page.goto(f"{server.url}/Runs")
    page.get_by_text("Per-class scores").first.wait_for(timeout=90_000)
    settle(page)
    page.get_by_role("tab", name="Per-class scores").click()
    page.get_by_text("(epoch").first.wait_for(timeout=30_000)
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "demo-3-runs")
    # the Predict page: pick a chip of the run's dataset, predict, map with both layers
    page.goto(f"{server.url}/Predict")
    page.get_by_role("button", name="Predict", exact=True).wait_for(timeout=90_000)
    settle(page)
    frames_before = len(page.frames)
    page.get_by_role("button", name="Predict", exact=True).click()
    page.get_by_role("button", name="Download prediction (GeoTIFF)").wait_for(timeout=120_000)
    _wait_for(
        lambda: _leaflet_image_layers(page) >= 2 and len(page.frames) >= frames_before,
        120,
        "predict map",
        server,
    )
    page.wait_for_timeout(1500)
    assert page.locator("[data-testid='stException']").count() == 0
    shoot(page, "demo-4-predict")
    assert traffic.external == [], f"requests left the machine: {traffic.external}"
    publish("demo-1-training", "demo-2-map", "demo-3-runs", "demo-4-predict")


def test_reload_finds_job_then_stop_and_resume(long_page_and_traffic, shoot, settle, publish):
    page, traffic, server = long_page_and_traffic
    page.goto(server.url)
    settle(page)
    page.get_by_role("button", name="Run the demo").click()
    _wait_for(
        lambda: _demo_run(server) is not None and _demo_run(server).status == "running",
        120,
        "a running job",
        server,
    )
    run_id = _demo_run(server).id
    # a reload (new session, empty session state) finds the running job through the run store
    page.reload()
    settle(page)
    page.get_by_text(run_id).first.wait_for(timeout=60_000)
    page.get_by_text("running").first.wait_for(timeout=60_000)
    shoot(page, "train-1-after-reload")
    # let it write a checkpoint, so that resuming continues from it
    run_dir = _demo_run(server).run_dir
    _wait_for(lambda: (run_dir / "checkpoints" / "last.ckpt").is_file(), 240, "the first checkpoint", server)
    # stop it from the Train page
    page.goto(f"{server.url}/Train")
    settle(page)
    page.get_by_text(run_id).first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Stop").first.click()
    _wait_for(lambda: _demo_run(server).status == "stopped", 120, "the job to stop", server)
    page.get_by_role("button", name="Resume").first.wait_for(timeout=60_000)
    shoot(page, "train-2-stopped")
    page.get_by_role("button", name="Resume").first.click()
    _wait_for(lambda: _demo_run(server).status == "running", 60, "the job to resume", server)
    resumed = _demo_run(server)
    assert resumed.attempts == 2
    assert resumed.resume_ckpt and resumed.resume_ckpt.endswith("last.ckpt")
    assert "--ckpt_path" in (run_dir / "job.json").read_text()
    page.get_by_role("button", name="Stop").first.wait_for(timeout=60_000)
    shoot(page, "train-3-resumed")
    page.get_by_role("button", name="Stop").first.click()
    _wait_for(lambda: _demo_run(server).status == "stopped", 120, "the resumed job to stop", server)
    assert traffic.external == [], traffic.external
    publish("train-1-after-reload", "train-2-stopped")
