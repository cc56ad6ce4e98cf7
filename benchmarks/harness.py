"""Run geoft and the reference (TerraTorch) on the same work, alternating, and compare medians.

A benchmark is a list of :class:`Case` objects. Each case names one piece of work and, for each
side (``geoft``, ``reference``), a callable that performs one measurement and returns metrics
(``{"wall_s": 1.2, "peak_rss_mb": 800.0}``). :func:`run_alternating` calls them in turn —
geoft, reference, geoft, reference, ... — so slow drifts of the machine (other load, thermal
throttling, caches) hit both sides equally; :func:`compare` reduces the samples to medians and a
ratio.

Most measurements run in a fresh subprocess of the side's own virtual environment
(:func:`run_worker`), which calls a function of a benchmark module through ``benchmarks.worker``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
SIDES = ("geoft", "reference")
RESULT_MARKER = "@@BENCH_RESULT@@"

Sample = Mapping[str, float]
Measure = Callable[[], Sample]


class BenchmarkFailure(RuntimeError):
    """One measurement could not be taken (the side crashed, timed out or is not installed)."""


# -- environments -----------------------------------------------------------------------------------
def side_python(side: str) -> Path:
    """The interpreter of a side: geoft's ``.venv`` or the reference's ``benchmarks/.venv-ref``.

    ``GEOFT_BENCH_PYTHON`` / ``GEOFT_BENCH_REF_PYTHON`` override them.
    """
    if side == "geoft":
        env = os.environ.get("GEOFT_BENCH_PYTHON")
        return Path(env) if env else REPO / ".venv" / "bin" / "python"
    if side == "reference":
        env = os.environ.get("GEOFT_BENCH_REF_PYTHON")
        return Path(env) if env else BENCH_DIR / ".venv-ref" / "bin" / "python"
    raise ValueError(f"unknown side {side!r}; sides are {SIDES}")


def side_available(side: str) -> str | None:
    """``None`` when the side's interpreter exists, else why not and what to run."""
    python = side_python(side)
    if python.exists():
        return None
    if side == "reference":
        return f"reference environment missing ({python}); create it with: bash benchmarks/setup_reference.sh"
    return f"geoft environment missing ({python}); create it with: make setup"


def run_worker(
    side: str,
    module: str,
    function: str,
    args: Mapping[str, Any] | None = None,
    timeout_s: float = 1800.0,
    threads: int = 2,
) -> dict[str, Any]:
    """Call ``benchmarks.<module>.<function>(**args)`` in a fresh process of ``side``'s interpreter.

    The function must return a JSON-able dict (floats for measurements); the worker prints it after a
    marker line.
    Raises :class:`BenchmarkFailure` with the tail of stderr when the process fails.
    """
    missing = side_available(side)
    if missing:
        raise BenchmarkFailure(missing)
    cmd = [str(side_python(side)), "-m", "benchmarks.worker", module, function, json.dumps(dict(args or {}))]
    env = dict(os.environ)
    env.update(thread_env(threads))
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise BenchmarkFailure(f"{side} {module}.{function} timed out after {timeout_s:.0f}s") from err
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BenchmarkFailure(f"{side} {module}.{function} exited {proc.returncode}:\n{tail}")
    return parse_worker_output(proc.stdout)


def parse_worker_output(stdout: str) -> dict[str, Any]:
    """Read the JSON dict that follows the result marker in a worker's stdout."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
            if not isinstance(result, dict):
                raise BenchmarkFailure(f"worker result is not a dict: {result!r}")
            return result
    raise BenchmarkFailure(f"worker printed no result line; stdout tail:\n{stdout[-2000:]}")


def environment() -> dict[str, Any]:
    """Worker function: what a side runs with (versions, threads). Recorded in the results' meta."""
    import platform

    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    for package in ("geoft", "terratorch", "lightning", "timm", "torchgeo"):
        try:
            from importlib.metadata import version

            info[package] = version(package)
        except Exception:  # noqa: BLE001 - a package absent from this side
            info[package] = None
    return info


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that pin BLAS/OpenMP and torch to ``threads`` threads."""
    value = str(threads)
    return {
        "OMP_NUM_THREADS": value,
        "MKL_NUM_THREADS": value,
        "OPENBLAS_NUM_THREADS": value,
        "GEOFT_BENCH_THREADS": value,
    }


def timed_command(cmd: Sequence[str], timeout_s: float = 600.0, threads: int = 2) -> dict[str, float]:
    """Run a command in a fresh process; return its wall time. Raises on a non-zero exit."""
    env = dict(os.environ)
    env.update(thread_env(threads))
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            list(cmd), cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as err:
        raise BenchmarkFailure(f"{' '.join(cmd)} timed out after {timeout_s:.0f}s") from err
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise BenchmarkFailure(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return {"wall_s": wall}


# -- alternating runs -------------------------------------------------------------------------------
@dataclass
class Metric:
    """How to read one metric: its unit and whether a higher value is better."""

    unit: str
    higher_is_better: bool
    informational: bool = False  # reported per side, no advantage (e.g. a count)


@dataclass
class Case:
    """One piece of work measured on both sides.

    Args:
        name: short label (``"import"``, ``"train_fp32_e2e"``).
        measures: side -> callable taking one measurement. A side may be absent (not comparable).
        metrics: metric name -> :class:`Metric`; only these are reported.
        note: what exactly runs, for the table.
    """

    name: str
    measures: dict[str, Measure]
    metrics: dict[str, Metric]
    note: str = ""


@dataclass
class Benchmark:
    """A named list of cases with how many alternating rounds to run (``warmup`` rounds discarded)."""

    name: str
    cases: list[Case]
    repeats: int
    warmup: int = 0

    def run(self) -> list[Row]:
        return run_cases(self.name, self.cases, repeats=self.repeats, warmup=self.warmup)


@dataclass
class SideResult:
    samples: list[dict[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_alternating(
    measures: Mapping[str, Measure],
    repeats: int,
    warmup: int = 0,
    stop_side_after_errors: int = 1,
) -> dict[str, SideResult]:
    """Call each side's measure in turn ``warmup + repeats`` times and collect the samples.

    Round ``i`` calls the sides in the order given, so the runs interleave (a, b, a, b, ...). The
    first ``warmup`` rounds are discarded. A side that fails ``stop_side_after_errors`` times is
    not called again (its errors are kept), so one broken side doesn't burn the run's time.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    results = {side: SideResult() for side in measures}
    for round_index in range(warmup + repeats):
        for side, measure in measures.items():
            result = results[side]
            if len(result.errors) >= stop_side_after_errors:
                continue
            try:
                sample = dict(measure())
            except BenchmarkFailure as err:
                result.errors.append(str(err))
                continue
            if round_index >= warmup:
                result.samples.append(sample)
    return results


def median_of(samples: Sequence[Mapping[str, float]], metric: str) -> float | None:
    """Median of one metric over the samples that have it (``None`` when none do)."""
    values = [s[metric] for s in samples if metric in s]
    return statistics.median(values) if values else None


@dataclass
class Row:
    """One line of the comparison table."""

    benchmark: str
    case: str
    metric: str
    unit: str
    higher_is_better: bool
    geoft: float | None
    reference: float | None
    n_geoft: int
    n_reference: int
    advantage: float | None
    informational: bool = False
    note: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)


def advantage(geoft: float | None, reference: float | None, higher_is_better: bool) -> float | None:
    """How many times better geoft is (> 1 means geoft wins), whatever the metric's direction."""
    if geoft is None or reference is None or geoft == 0 or reference == 0:
        return None
    return geoft / reference if higher_is_better else reference / geoft


def compare(benchmark: str, case: Case, results: Mapping[str, SideResult]) -> list[Row]:
    """Medians per side and geoft's advantage for each metric of a case."""
    rows = []
    empty = SideResult()
    for metric, spec in case.metrics.items():
        g = results.get("geoft", empty)
        r = results.get("reference", empty)
        gm, rm = median_of(g.samples, metric), median_of(r.samples, metric)
        rows.append(
            Row(
                benchmark=benchmark,
                case=case.name,
                metric=metric,
                unit=spec.unit,
                higher_is_better=spec.higher_is_better,
                informational=spec.informational,
                geoft=gm,
                reference=rm,
                n_geoft=len(g.samples),
                n_reference=len(r.samples),
                advantage=None if spec.informational else advantage(gm, rm, spec.higher_is_better),
                note=case.note,
                errors={side: res.errors for side, res in results.items() if res.errors},
            )
        )
    return rows


def run_cases(benchmark: str, cases: Sequence[Case], repeats: int, warmup: int = 0) -> list[Row]:
    """Run every case alternating its sides, printing progress; return the table rows."""
    rows: list[Row] = []
    for case in cases:
        print(f"[{benchmark}] {case.name}: {warmup}+{repeats} alternating rounds", flush=True)
        results = run_alternating(case.measures, repeats=repeats, warmup=warmup)
        for side, res in results.items():
            for err in res.errors:
                print(f"  {side} FAILED: {err}", flush=True)
        rows.extend(compare(benchmark, case, results))
    return rows


# -- output -----------------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table: medians, sample counts and geoft's advantage (×, > 1 = geoft better)."""
    lines = [
        "| benchmark | case | metric | geoft | reference | geoft advantage | n (g/r) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        direction = "" if row.informational else (" ↑" if row.higher_is_better else " ↓")
        adv = "—" if row.advantage is None else f"{row.advantage:.2f}×"
        status = ""
        if row.errors:
            status = " (failed: " + ", ".join(sorted(row.errors)) + ")"
        lines.append(
            f"| {row.benchmark} | {row.case} | {row.metric} [{row.unit}]{direction} | {_fmt(row.geoft)} "
            f"| {_fmt(row.reference)} | {adv}{status} | {row.n_geoft}/{row.n_reference} |"
        )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import platform

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def write_results(rows: Sequence[Row], meta: Mapping[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    """Write ``<timestamp>.json`` plus ``latest.json`` and ``latest.md``; return the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload = {"meta": dict(meta), "rows": [asdict(r) for r in rows]}
    path = out_dir / f"{stamp}.json"
    text = json.dumps(payload, indent=2)
    path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    header = (
        f"Measured {stamp} on {meta.get('machine', {}).get('cpu_model', '?')} "
        f"({meta.get('threads', '?')} threads, load {meta.get('machine', {}).get('load_avg')}); "
        f"command: `{meta.get('command', '')}`.\n\n"
        "Medians of alternating runs; ↑ higher is better, ↓ lower is better; geoft advantage > 1× "
        "means geoft is better.\n\n"
    )
    (out_dir / "latest.md").write_text(header + format_table(rows) + "\n")
    return path


def python_command(side: str, code: str) -> list[str]:
    """``[python, -c, code]`` for a side's interpreter."""
    return [str(side_python(side)), "-c", code]
