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


def _exception_shown(page) -> str | None:
    shown = page.locator("[data-testid='stException']")
    return shown.first.inner_text()[:2000] if shown.count() else None


def _keep_navigating(
    pages: list, url: str, load_s: float, render_timeout_s: float, on_tick
) -> tuple[list[float], list[str]]:
    """Every session opens its next page as soon as the last one rendered, until ``load_s`` is up (so
    the load stays at one navigation per session throughout); then the pages still loading finish.
    Returns the seconds from each navigation to its rendered page, and the failures."""
    times: list[float] = []
    failures: list[str] = []
    opened = [0] * len(pages)
    pending: dict[int, tuple[str, float]] = {}

    def open_next(i: int) -> None:
        path, title = PAGES[(i + opened[i]) % len(PAGES)]
        opened[i] += 1
        pending[i] = (title, time.perf_counter())
        pages[i].goto(f"{url}/{path}", wait_until="commit")

    start = time.perf_counter()
    for i in range(len(pages)):  # every session navigates at once
        open_next(i)
    while pending:
        loading = time.perf_counter() - start < load_s
        for i, (title, t0) in list(pending.items()):
            if _is_rendered(pages[i], title):
                times.append(time.perf_counter() - t0)
                del pending[i]
                if (shown := _exception_shown(pages[i])) is not None:
                    failures.append(f"{title}: a Python exception is shown: {shown}")
                if loading:
                    open_next(i)
            elif time.perf_counter() - t0 > render_timeout_s:
                failures.append(f"{title}: not rendered after {render_timeout_s:.0f} s")
                del pending[i]
        on_tick()
        time.sleep(0.1)
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
        start = time.time()
        last_sample = [start]

        def sample_metrics() -> None:  # every 10 s, to show the metrics arriving throughout
            if time.time() - last_sample[0] > 10:
                sizes.append(metrics_size())
                last_sample[0] = time.time()

        times, failures = _keep_navigating(pages, server.url, LOAD_SECONDS, 120, sample_metrics)
        sizes.append(metrics_size())

        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else float("nan")
        report = {
            "sessions": SESSIONS,
            "seconds": round(time.time() - start, 1),
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
        assert len(times) >= 2 * SESSIONS  # each session rendered a Runs and a Train page at least
        assert sizes[-1] > sizes[len(sizes) // 2] > sizes[0], "the job's metrics stopped arriving under load"
        assert store.get(run.id).status == RUNNING
        assert not [url for t in traffic for url in t.external]
    finally:
        for context in contexts:
            context.close()
