"""Time the demo from the click on "Run the demo" to the map, in headless Chromium, with the app's default
demo size (no GEOFT_DEMO_* overrides). Usage::

    PYTHONPATH=. python benchmarks/app_demo_click_to_map.py [--runs 1]

Prints one line per run: seconds from the click to two Leaflet image layers (image + prediction) on the
home page. Needs Debian's chromium and Playwright (as the browser tests do).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _browser_tools():
    spec = importlib.util.spec_from_file_location(
        "browser_conftest", REPO / "tests" / "browser" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["browser_conftest"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def click_to_map_seconds(tools, home: Path) -> float:
    from playwright.sync_api import sync_playwright

    env = {
        k: os.environ[k]
        for k in ("GEOFT_DEMO_EPOCHS", "GEOFT_DEMO_CHIPS", "GEOFT_DEMO_SIZE")
        if k in os.environ
    }
    server = tools.start_server(
        home, {"GEOFT_DEMO_EPOCHS": "", "GEOFT_DEMO_CHIPS": "", "GEOFT_DEMO_SIZE": "", **env}
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=tools.CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url)
            page.get_by_role("button", name="Run the demo").wait_for(timeout=120_000)
            tools._settle(page)
            start = time.perf_counter()
            page.get_by_role("button", name="Run the demo").click()
            while time.perf_counter() - start < 1800:
                if sum(f.locator(".leaflet-image-layer").count() for f in page.frames) >= 2:
                    return time.perf_counter() - start
                page.wait_for_timeout(500)
            raise TimeoutError("no map after 30 min")
    finally:
        tools.stop_server(server)
        tools._kill_jobs(home)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    tools = _browser_tools()
    from geoft.app.settings import load_settings

    s = load_settings({k: v for k, v in os.environ.items() if k.startswith("GEOFT_DEMO")})
    print(f"demo: {s.demo_chips} chips of {s.demo_size} px x {s.demo_epochs} epochs; cpus={os.cpu_count()}")
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            seconds = click_to_map_seconds(tools, Path(tmp) / "home")
        print(f"run {i + 1}: click to map {seconds:.1f} s (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
