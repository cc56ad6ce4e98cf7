"""Reliability with a real Streamlit server and Chromium: jobs outlive a killed server, a restarted
server shows them again (running, or interrupted with Resume when they died meanwhile), two users
pressing the demo button at once get one running and one queued job on the one CPU device, and a
running job never blocks another user's page. Zero requests leave the machine."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from geoft.app.processes import JOB_NICENESS, pid_alive
from geoft.app.progress import find_metrics_file
from geoft.app.run_store import COMPLETED, INTERRUPTED, QUEUED, RUNNING, RunRecord, RunStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TINY = {"GEOFT_DEMO_EPOCHS": "4", "GEOFT_DEMO_CHIPS": "8", "GEOFT_DEMO_SIZE": "32"}
LONG = {**TINY, "GEOFT_DEMO_EPOCHS": "300"}  # still training when the server is killed


def _wait_for(predicate: Callable[[], object], timeout_s: float, what: str, server: Any = None) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    log = server.log_text()[-3000:] if server else ""
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{log}")


def _store(home: Path) -> RunStore:
    return RunStore(home / "runs" / "runs.sqlite")


def _runs(home: Path) -> list[RunRecord]:
    db = home / "runs" / "runs.sqlite"
    return _store(home).list() if db.exists() else []


def _metrics_size(run: RunRecord) -> int:
    path = find_metrics_file(run.run_dir)
    return path.stat().st_size if path else 0


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _niceness(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return int(raw[raw.rfind(")") + 2 :].split()[16])


def _panel(page, run_id: str, status: str):
    """The run panel's title line (``name · id · icon status · device``) showing ``status``."""
    pattern = re.compile(re.escape(run_id) + r"\W+" + re.escape(status))
    return page.locator("[data-testid='stMarkdownContainer']", has_text=pattern).first


def _kill_server(server: Any) -> None:
    """SIGKILL the server's whole process group (what a crash or Ctrl-C in its terminal reaches)."""
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)


def _pregenerate_demo(home: Path, env: dict[str, str]) -> None:
    """Generate the demo dataset before the users arrive (concurrent first-time generation is not
    what these tests are about)."""
    from geoft.app.demo import ensure_demo_dataset
    from geoft.app.settings import load_settings

    settings = load_settings({"GEOFT_HOME": str(home), **env})
    settings.ensure_dirs()
    ensure_demo_dataset(settings)


class Browsers:
    """Independent browser contexts (users) whose external requests are blocked and counted."""

    def __init__(self, browser, tools: Any) -> None:
        self.browser = browser
        self.tools = tools
        self.contexts: list = []
        self.traffic: list = []

    def page(self, server: Any):
        context = self.browser.new_context(viewport={"width": 1400, "height": 1000})
        traffic = self.tools.Traffic(
            local_prefixes=(server.url, server.url.replace("127.0.0.1", "localhost"))
        )
        context.route("**/*", traffic.handle)
        self.contexts.append(context)
        self.traffic.append(traffic)
        return context.new_page()

    @property
    def external(self) -> list[str]:
        return [url for t in self.traffic for url in t.external]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@contextmanager
def _session(browser, tools: Any, home: Path) -> Iterator[tuple[Browsers, Callable[[dict[str, str]], Any]]]:
    """Browsers plus a server starter on ``home``; servers, then jobs, are cleaned up at the end."""
    browsers = Browsers(browser, tools)
    servers: list[Any] = []

    def start(env: dict[str, str]) -> Any:
        servers.append(tools.start(home, env))
        return servers[-1]

    try:
        yield browsers, start
    finally:
        browsers.close()
        for server in servers:
            tools.stop(server)
        tools.kill_jobs(home)


def _start_demo(page, server: Any, settle) -> RunRecord:
    page.goto(server.url)
    settle(page)
    page.get_by_role("button", name="Run the demo").click()
    _wait_for(
        lambda: any(r.status == RUNNING for r in _runs(server.home)), 120, "the demo job to run", server
    )
    return _runs(server.home)[0]


def test_server_killed_job_keeps_running_and_restarted_app_shows_it(
    browser, server_tools, tmp_path, settle, shoot
):
    home = tmp_path / "home"
    with _session(browser, server_tools, home) as (browsers, start):
        first_server = start(LONG)
        run = _start_demo(browsers.page(first_server), first_server, settle)
        _wait_for(lambda: _metrics_size(run) > 0, 120, "the job's first metrics", first_server)

        _kill_server(first_server)
        assert pid_alive(run.pid, run.pid_start), "the job died with the server"
        size = _metrics_size(run)
        _wait_for(lambda: _metrics_size(run) > size, 60, "metrics written after the server died")
        assert pid_alive(run.pid, run.pid_start)
        # the training process yields the CPU to the web server (its pages stay responsive)
        trainer = _children(run.pid)
        assert len(trainer) == 1 and _niceness(trainer[0]) == min(19, _niceness(run.pid) + JOB_NICENESS)

        server = start(LONG)  # same GEOFT_HOME, new port
        page = browsers.page(server)
        page.goto(f"{server.url}/Runs")
        settle(page)
        _panel(page, run.id, "running").wait_for(timeout=60_000)
        page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=60_000)  # live curves
        assert page.locator("[data-testid='stException']").count() == 0
        shoot(page, "reliability-1-restarted-server-running-job")

        # the new server adopted the job: same process, no second launch, no second run
        again = _store(home).get(run.id)
        assert again.status in (RUNNING, COMPLETED), f"{again.status}: {again.error}"
        assert (again.pid, again.pid_start, again.attempts) == (run.pid, run.pid_start, 1)
        assert len(_runs(home)) == 1
        assert browsers.external == [], f"requests left the machine: {browsers.external}"


def test_job_died_while_server_down_is_interrupted_and_resumable(
    browser, server_tools, tmp_path, settle, shoot
):
    home = tmp_path / "home"
    with _session(browser, server_tools, home) as (browsers, start):
        first_server = start(LONG)
        run = _start_demo(browsers.page(first_server), first_server, settle)

        _kill_server(first_server)
        os.killpg(run.pid, signal.SIGKILL)  # the worker leads its own group; its training child goes too
        _wait_for(lambda: not pid_alive(run.pid, run.pid_start), 10, "the job to die")
        assert _store(home).get(run.id).status == RUNNING  # nobody recorded an exit

        server = start(LONG)
        page = browsers.page(server)
        page.goto(f"{server.url}/Runs")
        settle(page)
        _panel(page, run.id, "interrupted").wait_for(timeout=60_000)
        assert _store(home).get(run.id).status == INTERRUPTED
        page.get_by_text("disappeared without recording an exit").first.wait_for(timeout=10_000)
        resume = page.get_by_role("button", name="Resume").first
        resume.wait_for(timeout=30_000)
        assert page.locator("[data-testid='stException']").count() == 0
        shoot(page, "reliability-2-interrupted-job")

        resume.click()
        _wait_for(lambda: _store(home).get(run.id).status == RUNNING, 60, "the resumed job", server)
        resumed = _store(home).get(run.id)
        assert resumed.attempts == 2 and pid_alive(resumed.pid, resumed.pid_start)
        assert browsers.external == [], f"requests left the machine: {browsers.external}"


def test_two_users_press_at_once_one_runs_one_queues(browser, server_tools, tmp_path, settle, shoot):
    home = tmp_path / "home"
    _pregenerate_demo(home, TINY)
    with _session(browser, server_tools, home) as (browsers, start):
        server = start(TINY)
        alice, bob, carol = browsers.page(server), browsers.page(server), browsers.page(server)
        t0 = time.monotonic()
        carol.goto(f"{server.url}/Runs")
        carol.get_by_text("No runs yet").wait_for(timeout=60_000)
        baseline_s = time.monotonic() - t0
        for page in (alice, bob):
            page.goto(server.url)
            settle(page)
        buttons = [p.get_by_role("button", name="Run the demo") for p in (alice, bob)]
        for button in buttons:
            button.wait_for()
        # both presses leave before either session's script has run (click() does not wait for it)
        for button in buttons:
            button.click(no_wait_after=True)

        _wait_for(lambda: len(_runs(home)) == 2, 60, "both submissions", server)
        _wait_for(
            lambda: sorted(r.status for r in _runs(home)) == [QUEUED, RUNNING], 30, "one running, one queued"
        )
        runs = _runs(home)
        first = next(r for r in runs if r.status == RUNNING)
        second = next(r for r in runs if r.status == QUEUED)
        assert first.device == second.device == "cpu"
        assert second.pid is None and second.attempts == 0
        assert abs(first.created - second.created) < 3, "the two presses were not at the same moment"

        # each user sees their own run (the home page remembers it in the session)
        own: dict[str, str] = {}
        for name, page in (("alice", alice), ("bob", bob)):
            _wait_for(
                lambda p=page: p.get_by_text(first.id).count() + p.get_by_text(second.id).count() > 0,
                30,
                f"{name}'s run panel",
            )
            own[name] = first.id if page.get_by_text(first.id).count() else second.id
            other = second.id if own[name] == first.id else first.id
            assert page.get_by_text(other).count() == 0, f"{name} sees the other user's run"
        assert sorted(own.values()) == sorted([first.id, second.id])
        running, waiting = (alice, bob) if own["alice"] == first.id else (bob, alice)
        _panel(running, first.id, "running").wait_for(timeout=30_000)
        _panel(waiting, second.id, "queued").wait_for(timeout=30_000)
        waiting.get_by_text("is busy with run 'demo'; it starts when that ends").first.wait_for(
            timeout=30_000
        )
        shoot(waiting, "reliability-3-queued-behind-other-user")

        # a third user's page renders while the job trains: jobs never hold the server's threads
        t0 = time.monotonic()
        carol.goto(f"{server.url}/Runs")  # its details panel shows the newest run
        live = _panel(carol, first.id, "running").or_(_panel(carol, second.id, "queued"))
        live.first.wait_for(timeout=60_000)
        rendered_s = time.monotonic() - t0
        assert _store(home).get(first.id).status == RUNNING, "the job finished too early to prove anything"
        assert rendered_s < max(15.0, 3 * baseline_s), (
            f"a page took {rendered_s:.1f} s to render during training ({baseline_s:.1f} s without a job)"
        )

        # when the first job ends its worker starts the queued one (no page needs to be open)
        for page in (alice, bob, carol):
            page.goto("about:blank")
        _wait_for(lambda: _store(home).get(first.id).status != RUNNING, 120, "the first job to end", server)
        done = _store(home).get(first.id)
        assert done.status == COMPLETED, f"{done.status}: {done.error}"
        _wait_for(lambda: _store(home).get(second.id).status != QUEUED, 30, "the queued job to start")
        started = _store(home).get(second.id)
        assert started.status in (RUNNING, COMPLETED), f"{started.status}: {started.error}"
        assert started.started >= done.finished and started.attempts == 1
        assert browsers.external == [], f"requests left the machine: {browsers.external}"
