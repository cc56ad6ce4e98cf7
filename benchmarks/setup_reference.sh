#!/usr/bin/env bash
# Create the reference environment (TerraTorch) used only by the benchmarks and the optional
# comparison tests: benchmarks/.venv-ref. It is never a geoft dependency.
#
# Usage: bash benchmarks/setup_reference.sh [PYTHON]   (PYTHON defaults to python3.11 or python3)
# The torch version is pinned to the one in geoft's .venv so both sides run the same kernels.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv-ref"
py="${1:-$(command -v python3.11 || command -v python3)}"

if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip wheel

pins=()
if [ -x "$root/.venv/bin/python" ]; then
    torch_version="$("$root/.venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
    if [ -n "$torch_version" ]; then
        pins+=("torch==$torch_version")
    fi
fi

echo "installing terratorch ${pins[*]:-} into $venv"
"$venv/bin/python" -m pip install terratorch "${pins[@]}"
"$venv/bin/python" -c 'import terratorch, torch; print("terratorch", terratorch.__version__ if hasattr(terratorch, "__version__") else "?", "torch", torch.__version__)'
"$venv/bin/python" -m pip freeze > "$here/.venv-ref/freeze.txt"
echo "reference environment ready: $venv"
