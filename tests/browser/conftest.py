"""Browser fixtures: a real `streamlit run app.py` server and Debian's Chromium driven by Playwright.

Every request that does not go to the local server is blocked and counted (route interception).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
SCREENSHOTS = REPO / "test-output" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str
    home: Path
    proc: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Traffic:
    """Requests seen by the browser: local ones allowed, everything else blocked and listed."""

    local_prefixes: tuple[str, ...]
    external: list[str] = field(default_factory=list)
    local_count: int = 0

    def handle(self, route) -> None:
        url = route.request.url
        if url.startswith(self.local_prefixes) or url.startswith(("data:", "blob:", "about:")):
            self.local_count += 1
            route.continue_()
        else:
            self.external.append(url)
            route.abort()


def start_server(home: Path, extra_env: dict[str, str] | None = None) -> AppServer:
    port = _free_port()
    env = {
        **os.environ,
        "GEOFT_HOME": str(home),
        "GEOFT_DEMO_EPOCHS": "2",
        "GEOFT_DEMO_CHIPS": "8",
        "GEOFT_DEMO_SIZE": "32",
        "GEOFT_BASEMAP_URL": "none",  # no base-map probe or tile request leaves the machine
        **(extra_env or {}),
    }
    env.pop("GEOFT_DATA_ROOTS", None)
    env.pop("GEOFT_RUNS_ROOT", None)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "streamlit.log"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return AppServer(url, home, proc, log)
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"streamlit did not start:\n{log.read_text(errors='replace')[-3000:]}")


def stop_server(server: AppServer) -> None:
    import signal

    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)


def _kill_playwright_drivers() -> None:
    """Kill this process's Playwright driver children (node ... run-driver)."""
    import signal

    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"run-driver" in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


# Module scope: each browser module gets its own Chromium, closed before unrelated tests run. Closing
# once at the end of the whole session hung in CI (the driver waited on a Chromium that had gone), so
# the close also has a watchdog that kills the driver rather than hang the test run.
@pytest.fixture(scope="module")
def browser():
    import threading

    if CHROMIUM is None:
        pytest.skip(
            "BROWSER TESTS SKIPPED: Debian's chromium is not installed (apt-get install -y chromium); "
            "no browser is ever downloaded"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    p = sync_api.sync_playwright().start()
    b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
    yield b
    watchdog = threading.Timer(30.0, _kill_playwright_drivers)
    watchdog.start()
    try:
        b.close()
        p.stop()
    except Exception as err:  # the driver was killed by the watchdog: report, do not hang
        print(f"browser fixture: closing Playwright failed ({err}); driver killed after 30 s")
    finally:
        watchdog.cancel()


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[AppServer]:
    server = start_server(tmp_path / "home")
    yield server
    stop_server(server)
    _kill_jobs(server.home)


def _kill_jobs(home: Path) -> None:
    import signal

    from geoft.app.processes import pid_alive
    from geoft.app.run_store import RUNNING, RunStore

    db = home / "runs" / "runs.sqlite"
    if not db.exists():
        return
    for run in RunStore(db).list(status=RUNNING):
        if run.pid and pid_alive(run.pid, run.pid_start):
            os.killpg(run.pid, signal.SIGKILL)


@pytest.fixture
def long_app_server(tmp_path: Path) -> Iterator[AppServer]:
    """A server whose demo trains long enough to be stopped, resumed and reloaded."""
    server = start_server(tmp_path / "home", {"GEOFT_DEMO_EPOCHS": "300"})
    yield server
    stop_server(server)
    _kill_jobs(server.home)


@pytest.fixture
def long_page_and_traffic(browser, long_app_server: AppServer):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    traffic = Traffic(local_prefixes=(long_app_server.url,))
    context.route("**/*", traffic.handle)
    page = context.new_page()
    yield page, traffic, long_app_server
    context.close()


@pytest.fixture
def page_and_traffic(browser, app_server: AppServer):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    traffic = Traffic(local_prefixes=(app_server.url, app_server.url.replace("127.0.0.1", "localhost")))
    context.route("**/*", traffic.handle)
    page = context.new_page()
    yield page, traffic, app_server
    context.close()


_CHARTS_DRAWN = (
    "() => [...document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]')]"
    ".every(c => { const g = c.querySelector('canvas, svg'); return g && g.getBoundingClientRect().height > 20; })"
)


def _screenshot(page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]'); return m ? m.scrollHeight : 0; }"
    )
    if height and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 6000)})
        # the resize redraws every element: wait until the charts are drawn again, then for the rest
        page.wait_for_timeout(1000)
        try:
            page.wait_for_function(_CHARTS_DRAWN, timeout=15_000)
        except Exception:
            pass  # a page without charts, or one that never draws: the screenshot shows which
        page.wait_for_timeout(1500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def _settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(500)
    # charts draw lazily: give them a moment to appear (not an error if the page has none)
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]')]"
            ".every(c => c.querySelector('canvas, svg'))",
            timeout=10_000,
        )
    except Exception:  # a chart that never draws shows up in the screenshot; the tests check content
        pass


@pytest.fixture
def shoot():
    return _screenshot


DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"


def _publish(*names: str) -> None:
    """Copy screenshots into docs/screenshots, only when GEOFT_UPDATE_DOCS_SCREENSHOTS=1 (keeps the repo clean)."""
    if os.environ.get("GEOFT_UPDATE_DOCS_SCREENSHOTS") != "1":
        return
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(SCREENSHOTS / f"{name}.png", DOCS_SCREENSHOTS / f"{name}.png")


@pytest.fixture
def publish():
    return _publish


@pytest.fixture
def settle():
    return _settle


@pytest.fixture
def server_tools():
    """The helpers above for tests that start, kill and restart servers themselves (test modules
    cannot import conftest under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(start=start_server, stop=stop_server, kill_jobs=_kill_jobs, Traffic=Traffic)
