"""Run the benchmarks of geoft against the reference (TerraTorch) and write the results.

    .venv/bin/python benchmarks/run_all.py              # everything (run on a quiet machine)
    .venv/bin/python benchmarks/run_all.py --quick      # smoke run: few rounds, small inputs
    .venv/bin/python benchmarks/run_all.py --only startup --only training

Results: ``benchmarks/results/<timestamp>.json``, ``latest.json`` and ``latest.md`` (the table);
``--quick`` writes under ``benchmarks/results/quick/`` instead.
The reference side needs ``bash benchmarks/setup_reference.sh`` once; without it the reference
columns stay empty and each case says why.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import (  # noqa: E402
    RESULTS_DIR,
    SIDES,
    BenchmarkFailure,
    Row,
    format_table,
    machine_info,
    run_worker,
    side_available,
    write_results,
)

BENCHMARKS = ("startup", "training", "tiled_inference", "utilisation")
# Benchmarks other helpers own; run when their module exists and defines
# ``build(quick: bool, threads: int) -> benchmarks.harness.Benchmark``.
OPTIONAL = ("data_loading",)


def available_benchmarks() -> list[str]:
    """The built-in benchmarks plus the optional ones that are present and follow the protocol."""
    names = list(BENCHMARKS)
    for name in OPTIONAL:
        path = Path(__file__).with_name(f"{name}.py")
        if path.exists() and "def build(" in path.read_text():
            names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: few rounds and small inputs")
    parser.add_argument(
        "--only",
        action="append",
        choices=available_benchmarks(),
        metavar="NAME",
        help=f"run only these ({', '.join(available_benchmarks())})",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per side (default 2)")
    parser.add_argument(
        "--scenes",
        default=None,
        metavar="SIZES",
        help="scene sizes for tiled_inference, e.g. 2048,4096,8192 (default 4096; --quick: 1024)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"results folder (default {RESULTS_DIR}; --quick: {RESULTS_DIR / 'quick'}, so a smoke run "
        "never replaces the kept latest.md)",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR

    os.environ["GEOFT_BENCH_THREADS"] = str(args.threads)
    if args.scenes:
        try:
            [int(size) for size in args.scenes.split(",")]
        except ValueError:
            parser.error(f"--scenes must be comma-separated integers, got {args.scenes!r}")
        os.environ["GEOFT_BENCH_SCENES"] = args.scenes
    names = list(dict.fromkeys(args.only or available_benchmarks()))
    environments: dict[str, object] = {}
    for side in SIDES:
        missing = side_available(side)
        if missing:
            print(f"WARNING: {missing}", flush=True)
            environments[side] = missing
            continue
        try:
            environments[side] = run_worker(
                side, "harness", "environment", timeout_s=300, threads=args.threads
            )
        except BenchmarkFailure as err:
            environments[side] = f"broken: {err}"
            print(f"WARNING: {side} environment is broken: {err}", flush=True)
    print(f"environments: {environments}", flush=True)

    machine_at_start = machine_info()
    load = machine_at_start.get("load_avg")
    if load and load[0] > 0.5:
        print(
            f"WARNING: load average {load[0]:.2f} at start: other work is running, timings will be noisy; "
            "run on a quiet machine for numbers worth keeping",
            flush=True,
        )
    rows: list[Row] = []
    started = time.time()
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        bench = module.build(quick=args.quick, threads=args.threads)
        rows.extend(bench.run())
    meta = {
        "command": " ".join(["benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "threads": args.threads,
        "benchmarks": names,
        "duration_s": time.time() - started,
        "machine": machine_at_start,
        "load_avg_at_end": machine_info().get("load_avg"),
        "environments": environments,
    }
    path = write_results(rows, meta, args.out)
    print()
    print(format_table(rows))
    print(f"\nwrote {path} and {args.out / 'latest.md'}")
    # geoft is what is under test: its failures fail the run; a missing reference only warns.
    geoft_failed = sorted({f"{r.benchmark}/{r.case}" for r in rows if "geoft" in r.errors})
    if geoft_failed:
        print(f"geoft side FAILED in: {', '.join(geoft_failed)}", file=sys.stderr)
    return 1 if geoft_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
