"""Start-up cost: ``import``, listing the registries, and ``--help`` of each tool's command line.

Each measurement is a fresh interpreter of the side's own virtual environment, so nothing is
cached in memory (the OS file cache is warm after the first round; the first round of each side
can be discarded with ``warmup``). ``import_s`` is timed inside the process around the import
statement; ``process_s`` is the wall time of the whole process, interpreter start included.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import (
    RESULT_MARKER,
    Benchmark,
    BenchmarkFailure,
    Case,
    Measure,
    Metric,
    Sample,
    python_command,
    side_python,
    timed_command,
)

# What each side runs. The timed region is the body; it must leave a ``names`` count.
IMPORT_CODE = {
    "geoft": "import geoft\nnames = 0",
    "reference": "import terratorch\nnames = 0",
}
# Import the package and list every registry's names: what a user does to discover components.
# geoft: its own names of every registry (cheap by design; timm/smp are opt-in sources).
# reference: its registries as documented, ``list(REGISTRY)`` of each.
LIST_CODE = {
    "geoft": (
        "import geoft\n"
        "from geoft.registry import BACKBONE_REGISTRY, NECK_REGISTRY, DECODER_REGISTRY, MODEL_FACTORY_REGISTRY\n"
        "names = sum(len(r.names()) for r in (BACKBONE_REGISTRY, NECK_REGISTRY, DECODER_REGISTRY, "
        "MODEL_FACTORY_REGISTRY))"
    ),
    "reference": (
        "import terratorch\n"
        "from terratorch.registry import BACKBONE_REGISTRY, NECK_REGISTRY, DECODER_REGISTRY, "
        "MODEL_FACTORY_REGISTRY\n"
        "names = sum(len(list(r)) for r in (BACKBONE_REGISTRY, NECK_REGISTRY, DECODER_REGISTRY, "
        "MODEL_FACTORY_REGISTRY))"
    ),
}
CLI_NAME = {"geoft": "geoft", "reference": "terratorch"}


def timed_snippet(side: str, body: str) -> Sample:
    """Run ``body`` in a fresh interpreter of ``side``; return in-process and whole-process seconds."""
    indented = "\n".join("    " + line for line in body.splitlines())
    code = (
        "import time, json\n"
        "t0 = time.perf_counter()\n"
        "def _body():\n"
        f"{indented}\n"
        "    return names\n"
        "n = _body()\n"
        "dt = time.perf_counter() - t0\n"
        f"print({RESULT_MARKER!r} + json.dumps({{'import_s': dt, 'names': n}}))\n"
    )
    start = time.perf_counter()
    # A neutral working directory: ``-c`` puts it on sys.path, and the checkout holds ``geoft``.
    proc = subprocess.run(
        python_command(side, code), cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=600
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise BenchmarkFailure(f"{side}: snippet failed:\n{tail}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            data = json.loads(line[len(RESULT_MARKER) :])
            return {"import_s": data["import_s"], "process_s": wall, "names": data["names"]}
    raise BenchmarkFailure(f"{side}: snippet printed no result")


def cli_help(side: str) -> Sample:
    """Wall time of ``<tool> --help`` through the console script of the side's environment."""
    script = Path(side_python(side)).parent / CLI_NAME[side]
    if not script.exists():
        raise BenchmarkFailure(f"{side}: no console script {script}")
    return timed_command([str(script), "--help"])


def _sides(make: Callable[[str], Sample]) -> dict[str, Measure]:
    return {side: (lambda side=side: make(side)) for side in ("geoft", "reference")}


def build(quick: bool, threads: int = 2) -> Benchmark:
    """The start-up benchmark: ≥5 alternating fresh-process rounds (3 in quick mode), 1 warm-up."""
    seconds = Metric("s", higher_is_better=False)
    cases = [
        Case(
            "import",
            _sides(lambda side: timed_snippet(side, IMPORT_CODE[side])),
            {"import_s": seconds, "process_s": seconds},
            note="`import geoft` vs `import terratorch`",
        ),
        Case(
            "import+list_registries",
            _sides(lambda side: timed_snippet(side, LIST_CODE[side])),
            {
                "import_s": seconds,
                "process_s": seconds,
                "names": Metric("names", higher_is_better=True, informational=True),
            },
            note="import, then list every registry's names",
        ),
        Case(
            "cli_help",
            _sides(cli_help),
            {"wall_s": seconds},
            note="`geoft --help` vs `terratorch --help`",
        ),
    ]
    return Benchmark("startup", cases, repeats=3 if quick else 7, warmup=1)
