"""Levers measured one by one on geoft alone: one setting changed, everything else as in the benchmarks.

``python benchmarks/levers.py [--rounds N] [--only NAME]`` runs each variant of a lever in a fresh
process, alternating between variants round by round, and prints medians (and writes JSON to
``benchmarks/results/levers.json``). Levers:

* ``attention``: the model-only training step (Prithvi tiny + UPerNet, 224², batch 8, bf16 autocast)
  with timm's fused ``F.scaled_dot_product_attention`` against its explicit softmax(QKᵀ)V.
* ``tile_batch``: scene prediction of a 1024² 6-band GeoTIFF (crop 224, stride 192, geoft's default
  precision) with 1, 4, 16 or 64 tiles per forward pass.
* ``workers``: ``Trainer.fit`` on the generated 224² chips (bf16) with 0, 1 or 2 loader workers
  (persistent when > 0; ``pin_memory`` only matters with a GPU and is left off here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import RESULTS_DIR, run_worker  # noqa: E402


# -- worker functions (run in geoft's environment) ----------------------------------------------------
def attention_step(fused: bool, steps: int = 4) -> dict[str, float]:
    """Seconds per model-only bf16 training step with fused or explicit attention."""
    from benchmarks.training import model_step_fn

    switched: list[Any] = []

    def set_attention(model: Any) -> None:
        for module in model.modules():
            if hasattr(module, "fused_attn"):  # timm's Attention
                module.fused_attn = fused
                switched.append(module)

    step = model_step_fn("geoft", "bf16-mixed", 8, configure=set_attention)
    if not switched:
        raise RuntimeError("no timm attention modules found")
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return {"s_per_step": (time.perf_counter() - start) / steps, "attention_modules": float(len(switched))}


def tile_batch_scene(batch_size: int, scene: str) -> dict[str, float]:
    """Wall time and peak RSS of one scene prediction with ``batch_size`` tiles per forward."""
    from benchmarks.tiled_inference import predict_scene

    return predict_scene("geoft", scene, precision="default", tile_batch=batch_size)


def workers_fit(num_workers: int, chips: str) -> dict[str, float]:
    """Steps/s of ``Trainer.fit`` (bf16) with ``num_workers`` loader workers."""
    from benchmarks.training import train_e2e

    return train_e2e("geoft", chips, "bf16-mixed", steps=8, warmup_steps=2, num_workers=num_workers)


# -- driver -------------------------------------------------------------------------------------------
def _variants(name: str) -> tuple[str, list[tuple[str, str, dict[str, Any]]]]:
    from benchmarks.scenes import make_chips, make_scene
    from benchmarks.training import data_dir

    if name == "attention":
        return "s_per_step", [(f"fused={f}", "attention_step", {"fused": f}) for f in (True, False)]
    if name == "tile_batch":
        scene = make_scene(data_dir() / "scene_1024.tif", 1024, bands=6)
        return "wall_s", [
            (f"batch={b}", "tile_batch_scene", {"batch_size": b, "scene": str(scene)}) for b in (1, 4, 16, 64)
        ]
    if name == "workers":
        chips = make_chips(data_dir() / "chips224_n96", n_train=96, n_val=8, size=224)
        return "steps_per_s", [
            (f"num_workers={w}", "workers_fit", {"num_workers": w, "chips": str(chips.root)})
            for w in (0, 1, 2)
        ]
    raise ValueError(f"unknown lever {name!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", choices=["attention", "tile_batch", "workers"])
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for name in args.only or ["attention", "tile_batch", "workers"]:
        metric, variants = _variants(name)
        samples: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in variants}
        for _ in range(args.rounds):
            for label, function, fargs in variants:
                samples[label].append(run_worker("geoft", "levers", function, fargs, timeout_s=1800))
        results[name] = {
            label: {key: statistics.median(s[key] for s in runs) for key in runs[0]} | {"rounds": len(runs)}
            for label, runs in samples.items()
        }
        for label, medians in results[name].items():
            print(f"{name:10s} {label:16s} {metric} {medians[metric]:.3f}  {medians}", flush=True)
    out = RESULTS_DIR / "levers.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
