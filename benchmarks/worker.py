"""Subprocess entry: ``python -m benchmarks.worker MODULE FUNCTION JSON_ARGS``.

Imports ``benchmarks.MODULE``, calls ``FUNCTION(**args)`` and prints the returned dict (numbers,
or strings for :func:`benchmarks.harness.environment`) as JSON after the harness's result marker.
Runs in either side's interpreter, so it imports nothing but the standard library (and the
stdlib-only harness) before the benchmark does.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

from benchmarks.harness import RESULT_MARKER  # standard library only


def _isolate_from_checkout() -> None:
    """Drop the repository root from ``sys.path`` (``-m`` put it there as the working directory).

    ``benchmarks`` is already imported, so its submodules still resolve through its ``__path__``;
    but the reference side can no longer import the checkout's ``geoft`` nor read its metadata, and
    the geoft side uses its installed package only.
    """
    import benchmarks

    root = os.path.dirname(os.path.dirname(os.path.abspath(benchmarks.__file__)))
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != root]


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m benchmarks.worker MODULE FUNCTION JSON_ARGS", file=sys.stderr)
        return 2
    module_name, function_name, raw_args = argv
    _isolate_from_checkout()
    threads = os.environ.get("GEOFT_BENCH_THREADS")
    module = importlib.import_module(f"benchmarks.{module_name}")
    function = getattr(module, function_name)
    if threads and module_name != "startup":
        import torch

        torch.set_num_threads(int(threads))
    result = function(**json.loads(raw_args))
    print(RESULT_MARKER + json.dumps(dict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
