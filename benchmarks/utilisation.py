"""How much of the CPU's matmul throughput a training step uses.

In one process per measurement:

1. peak: the best FLOP/s of ``torch.matmul`` on large square matrices (``2 n^3`` FLOPs each) at
   the step's dtype (fp32, or bf16 for ``bf16-mixed``), with the benchmark's thread count;
2. the training step's FLOPs (forward + backward), counted with
   :class:`torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions);
3. the step's time (model-only step of :mod:`benchmarks.training`, batch 8, 224x224, 6 bands).

``utilisation = achieved / peak`` with ``achieved = FLOPs per step / seconds per step``. Both tools
are measured, alternating, so the table also compares their achieved FLOP/s on the same model.
"""

from __future__ import annotations

import time

from benchmarks.harness import Benchmark, Case, Measure, Metric, run_worker
from benchmarks.training import model_step_fn


def peak_matmul_flops(dtype_name: str, n: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of ``n x n @ n x n`` over ``repeats`` runs after one warm-up."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def step_flops(step: object) -> float:
    """FLOPs of one call of ``step`` (forward and backward), as counted by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()  # type: ignore[operator]
    return float(counter.get_total_flops())


def measure(
    tool: str,
    precision: str,
    batch_size: int = 8,
    steps: int = 5,
    warmup_steps: int = 1,
    matmul_n: int = 2048,
) -> dict[str, float]:
    """Peak matmul FLOP/s, the step's FLOPs and its achieved FLOP/s for ``tool`` at ``precision``."""
    peak = peak_matmul_flops("bf16" if precision == "bf16-mixed" else "fp32", n=matmul_n)
    step = model_step_fn(tool, precision, batch_size)
    for _ in range(warmup_steps):
        step()
    flops = step_flops(step)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    achieved = flops / seconds
    return {
        "peak_gflops": peak / 1e9,
        "step_gflop": flops / 1e9,
        "achieved_gflops": achieved / 1e9,
        "utilisation": achieved / peak,
    }


def build(quick: bool, threads: int = 2) -> Benchmark:
    """fp32 and bf16-mixed (quick: fp32 only, small matmul, 2 steps)."""
    steps, n = (2, 1024) if quick else (5, 4096)
    metrics = {
        "peak_gflops": Metric("GFLOP/s", higher_is_better=True, informational=True),
        "step_gflop": Metric("GFLOP", higher_is_better=False, informational=True),
        "achieved_gflops": Metric("GFLOP/s", higher_is_better=True),
        "utilisation": Metric("achieved/peak", higher_is_better=True),
    }

    def sides(precision: str) -> dict[str, Measure]:
        return {
            tool: (
                lambda tool=tool: run_worker(
                    tool,
                    "utilisation",
                    "measure",
                    {"tool": tool, "precision": precision, "steps": steps, "matmul_n": n},
                    timeout_s=1800.0,
                    threads=threads,
                )
            )
            for tool in ("geoft", "reference")
        }

    precisions = ["32-true"] if quick else ["32-true", "bf16-mixed"]
    cases = [
        Case(f"train_step_{p}", sides(p), metrics, note=f"model-only step, batch 8, {p}, vs matmul peak")
        for p in precisions
    ]
    return Benchmark("utilisation", cases, repeats=1 if quick else 3, warmup=0)
