"""Soak: a live Train page polls a running job for a long time; the web server's memory is sampled.

Starts ``streamlit run app.py`` on loopback with a fresh home, starts the demo job (long enough to
outlast the soak) from a real Chromium page, opens the Train page and leaves it open (its live panel
reruns every few seconds), and samples the server's resident memory (the Streamlit process only, not the
training job) every ``--every`` seconds. Reports the growth between the end of the warm-up and the end.

    .venv/bin/python -m benchmarks.soak                    # 30 minutes (target: growth < 50 MB)
    .venv/bin/python -m benchmarks.soak --minutes 3 --warmup 1    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(home: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "GEOFT_HOME": str(home), "GEOFT_DEMO_EPOCHS": "100000", "GEOFT_DEMO_CHIPS": "8",
           "GEOFT_DEMO_SIZE": "32"}  # fmt: skip
    log = open(home / "streamlit.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError("streamlit did not start; see " + str(home / "streamlit.log"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes before the baseline sample")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    from playwright.sync_api import sync_playwright

    from geoft.app.run_store import RUNNING, RunStore

    home = Path(tempfile.mkdtemp(prefix="geoft-soak-"))
    proc, url = _start_server(home)
    samples: list[tuple[float, float]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
            page = browser.new_page()
            page.goto(url)
            page.get_by_role("button", name="Run the demo").click()
            store_path = home / "runs" / "runs.sqlite"
            deadline = time.time() + 300
            while time.time() < deadline and not (
                store_path.exists() and RunStore(store_path).list(status=RUNNING)
            ):
                time.sleep(1)
            page.goto(f"{url}/Train")
            start = time.time()
            while time.time() - start < args.minutes * 60:
                samples.append((time.time() - start, _rss_mb(proc.pid)))
                page.wait_for_timeout(args.every * 1000)
            running = bool(RunStore(store_path).list(status=RUNNING))
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        for run in (
            RunStore(home / "runs" / "runs.sqlite").list(status=RUNNING) if (home / "runs").exists() else []
        ):
            if run.pid:
                try:
                    os.killpg(run.pid, signal.SIGKILL)
                except OSError:
                    pass
    baseline = next((mb for t, mb in samples if t >= args.warmup * 60), samples[0][1])
    growth = samples[-1][1] - baseline
    report = {
        "minutes": args.minutes,
        "warmup_minutes": args.warmup,
        "baseline_mb": round(baseline, 1),
        "final_mb": round(samples[-1][1], 1),
        "growth_mb": round(growth, 1),
        "max_mb": round(max(mb for _, mb in samples), 1),
        "job_still_running": running,
        "samples": [(round(t), round(mb, 1)) for t, mb in samples],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2))
    print(
        f"soak {args.minutes:g} min: server RSS {report['baseline_mb']} -> {report['final_mb']} MiB "
        f"(growth {report['growth_mb']} MiB after {args.warmup:g} min warm-up; max {report['max_mb']}); "
        f"job running at the end: {running}"
    )
    return 0 if growth < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
