"""Load that holds: 10 browser sessions on loopback keep opening the Runs and Train pages while a job
trains, for a bounded time (``GEOFT_LOAD_SECONDS``, default 120). Every page renders, the job's
metrics keep arriving, and the p95 page time is reported (``test-output/load.json``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from geoft.app.progress import find_metrics_file
from geoft.app.run_store import RUNNING, RunStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 10
LOAD_SECONDS = float(os.environ.get("GEOFT_LOAD_SECONDS", "120"))
PAGES = (("Runs", "Runs"), ("Train", "Train"))  # (url path, page title)
REPO = Path(__file__).resolve().parents[2]


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


_DONE = (
    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
    " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')"
)


def _is_rendered(page, title: str) -> bool:
    """The page's title is shown and Streamlit has finished running its script (checked without waiting)."""
    try:
        return page.get_by_role("heading", name=title).first.is_visible() and bool(page.evaluate(_DONE))
    except Exception:  # navigating: the document is being replaced
        return False


def _time_renders(begun: list, timeout_s: float) -> tuple[list[float], list[str]]:
    """Seconds from each navigation to its rendered page, polling every page in turn (so that a slow
    page does not inflate the times of the others)."""
    pending = list(begun)
    times, failures = [], []
    deadline = time.perf_counter() + timeout_s
    while pending and time.perf_counter() < deadline:
        for item in list(pending):
            page, title, t0 = item
            if _is_rendered(page, title):
                times.append(time.perf_counter() - t0)
                pending.remove(item)
        time.sleep(0.1)
    failures += [f"{title}: not rendered after {timeout_s:.0f} s" for _, title, _ in pending]
    return times, failures


def test_ten_sessions_open_runs_and_train_while_a_job_trains(browser, long_app_server, server_tools) -> None:
    server = long_app_server
    contexts, traffic = [], []
    try:
        for _ in range(SESSIONS):
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            seen = server_tools.Traffic(
                local_prefixes=(server.url, server.url.replace("127.0.0.1", "localhost"))
            )
            context.route("**/*", seen.handle)
            contexts.append(context)
            traffic.append(seen)
        pages = [c.new_page() for c in contexts]

        # one session starts the demo job (300 epochs: it trains for the whole test)
        pages[0].goto(server.url)
        pages[0].get_by_role("button", name="Run the demo").click()
        store = RunStore(server.home / "runs" / "runs.sqlite")
        _wait(lambda: (server.home / "runs" / "runs.sqlite").exists() and store.list(status=RUNNING), 180,
              "the demo job to run")  # fmt: skip
        run = store.list(status=RUNNING)[0]

        def metrics_size() -> int:
            path = find_metrics_file(run.run_dir)
            return path.stat().st_size if path else 0

        _wait(lambda: metrics_size() > 0, 180, "the job's first metrics")
        sizes = [metrics_size()]
        times: list[float] = []
        failures: list[str] = []
        start = time.time()
        cycle = 0
        while time.time() - start < LOAD_SECONDS:
            begun = []
            for i, page in enumerate(pages):  # every session navigates at once
                path, title = PAGES[(i + cycle) % len(PAGES)]
                begun.append((page, title, time.perf_counter()))
                page.goto(f"{server.url}/{path}", wait_until="commit")
            cycle_times, cycle_failures = _time_renders(begun, timeout_s=120)
            times += cycle_times
            failures += cycle_failures
            for page, title, _ in begun:
                shown = page.locator("[data-testid='stException']")
                if shown.count():
                    failures.append(
                        f"{title}: a Python exception is shown: {shown.first.inner_text()[:2000]}"
                    )
            sizes.append(metrics_size())
            cycle += 1

        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else float("nan")
        report = {
            "sessions": SESSIONS,
            "seconds": round(time.time() - start, 1),
            "cycles": cycle,
            "pages": len(times),
            "p50_s": round(times[len(times) // 2], 2) if times else None,
            "p95_s": round(p95, 2),
            "max_s": round(times[-1], 2) if times else None,
            "metrics_bytes": sizes,
        }
        out = REPO / "test-output" / "load.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        print(f"load test: {json.dumps(report)}")

        assert not failures, failures
        assert cycle >= 1 and len(times) == cycle * SESSIONS
        assert sizes[-1] > sizes[0], "the job's metrics stopped arriving under load"
        assert store.get(run.id).status == RUNNING
        assert not [url for t in traffic for url in t.external]
    finally:
        for context in contexts:
            context.close()
