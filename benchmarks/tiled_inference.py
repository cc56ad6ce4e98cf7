"""Tiled inference of a whole scene: a 6-band GeoTIFF in, a class-map GeoTIFF out.

Same model on both sides (Prithvi tiny + UPerNet, random weights with a fixed seed, eval mode),
tiles of 224 px with stride 192, 16 tiles per forward pass (both tools' default).

* geoft: :func:`geoft.io.scene.predict_scene_to_geotiff`, which walks one scene-wide tile grid row by
  row, reading, predicting and writing in strips. ``precision="default"`` runs it the way
  ``geoft predict-scene`` does by default (bf16 autocast where the CPU has native bf16); ``32-true``
  is full precision, like the reference.
* reference: what TerraTorch does with an image: read the whole array with rasterio, normalise,
  ``terratorch.tasks.tiled_inference.tiled_inference`` on it, argmax, write the GeoTIFF.

Timed: from opening the input to the closed output file (model building excluded). Peak RSS is
the process's high-water mark (``getrusage``), so it includes the interpreter, the libraries and
the model on both sides.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Benchmark, Case, Measure, Metric, run_worker
from benchmarks.training import BANDS_HLS, build_task, data_dir, peak_rss_mb

CROP = 224
STRIDE = 192
TILE_BATCH = 16
NODATA_CUT = 0.55  # two nodata triangles of 0.55 x 0.55 / 2 each: 30 % of the scene


def _eval_model(tool: str) -> Any:
    import torch

    torch.manual_seed(0)
    model = build_task(tool).model
    model.eval()
    return model


def predict_scene(
    tool: str, scene: str, precision: str = "32-true", tile_batch: int = TILE_BATCH
) -> dict[str, float]:
    """Predict ``scene`` into a temporary GeoTIFF with ``tool``; wall time and peak RSS.

    ``precision`` applies to geoft only (``default`` or a Lightning name); the reference's tiled
    inference has no precision setting and runs in fp32.
    """
    from benchmarks.scenes import ChipSet

    model = _eval_model(tool)
    means, stds = ChipSet.means(len(BANDS_HLS)), ChipSet.stds(len(BANDS_HLS))
    rss_before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "prediction.tif"
        start = time.perf_counter()
        if tool == "geoft":
            tiles = _predict_geoft(model, Path(scene), out, means, stds, precision, tile_batch)
        elif tool == "reference":
            tiles = _predict_reference(model, Path(scene), out, means, stds, tile_batch)
        else:
            raise ValueError(f"unknown tool {tool!r}")
        wall = time.perf_counter() - start
        if not out.is_file() or out.stat().st_size == 0:
            raise RuntimeError(f"{tool} wrote no prediction")
    return {"wall_s": wall, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": rss_before, "tiles": tiles}


def _predict_geoft(
    model: Any, scene: Path, out: Path, means: list[float], stds: list[float], precision: str, tile_batch: int
) -> int:
    import torch

    try:
        from geoft.io.scene import inference_autocast_dtype, predict_scene_to_geotiff
    except ImportError as err:
        raise RuntimeError(f"geoft.io.scene.predict_scene_to_geotiff is not available ({err})") from err

    dtype = inference_autocast_dtype(None if precision == "default" else precision, torch.device("cpu"))

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            return model(x).output

    with torch.inference_mode():
        result = predict_scene_to_geotiff(
            forward,
            scene,
            out,
            params={"crop": CROP, "stride": STRIDE, "batch_size": tile_batch},
            normalise=(means, stds),
        )
    return int(result.tiles)


def _predict_reference(
    model: Any, scene: Path, out: Path, means: list[float], stds: list[float], tile_batch: int
) -> int:
    import numpy as np
    import rasterio
    import torch
    from terratorch.tasks.tiled_inference import tiled_inference

    with rasterio.open(scene) as src:
        image = torch.from_numpy(src.read().astype(np.float32))
        profile = src.profile
    mean_t = torch.tensor(means).view(-1, 1, 1)
    std_t = torch.tensor(stds).view(-1, 1, 1)
    image = ((image - mean_t) / std_t)[None]
    calls = 0

    def forward(x: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += x.shape[0]
        return model(x).output

    with torch.inference_mode():
        logits = tiled_inference(forward, image, crop=CROP, stride=STRIDE, batch_size=tile_batch)
    prediction = logits.argmax(dim=1)[0].numpy().astype(np.uint8)
    profile.update(count=1, dtype="uint8", nodata=None, compress="deflate")
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(prediction[None])
    return calls


def build(quick: bool, threads: int = 2) -> Benchmark:
    """4096² scene (quick: 1024²); 2048² and 8192² with ``GEOFT_BENCH_SCENES=2048,4096,8192``."""
    import os

    from benchmarks.scenes import make_scene

    env = os.environ.get("GEOFT_BENCH_SCENES")
    sizes = [int(s) for s in env.split(",")] if env else ([1024] if quick else [4096])
    metrics = {
        "wall_s": Metric("s", higher_is_better=False),
        "peak_rss_mb": Metric("MiB", higher_is_better=False),
        "tiles": Metric("tiles", higher_is_better=False, informational=True),
    }
    cases = []
    for size in sizes:
        scene = make_scene(data_dir() / f"scene_{size}.tif", size, bands=len(BANDS_HLS))
        timeout = max(600.0, size * size / 4096**2 * 3600.0)

        def measures(
            scene: Path = scene, timeout: float = timeout, precision: str = "32-true"
        ) -> dict[str, Measure]:
            return {
                tool: (
                    lambda tool=tool: run_worker(
                        tool,
                        "tiled_inference",
                        "predict_scene",
                        {"tool": tool, "scene": str(scene), "precision": precision},
                        timeout_s=timeout,
                        threads=threads,
                    )
                )
                for tool in ("geoft", "reference")
            }

        swath = make_scene(
            data_dir() / f"swath_{size}.tif", size, bands=len(BANDS_HLS), nodata_cut=NODATA_CUT
        )
        cases.append(
            Case(
                f"swath_{size}_fp32",
                measures(scene=swath),
                metrics,
                note=f"{size}x{size}x6 real-shaped swath, 30 % nodata corners -> class map, both fp32 "
                "(geoft skips tiles that hold only nodata)",
            )
        )
        note = f"{size}x{size}x6 GeoTIFF -> class map"
        cases.append(Case(f"scene_{size}_fp32", measures(), metrics, note=f"{note}, both fp32"))
        cases.append(
            Case(
                f"scene_{size}_defaults",
                measures(precision="default"),
                metrics,
                note=f"{note}, each tool's default (geoft: bf16 autocast where native; reference: fp32)",
            )
        )
    return Benchmark("tiled_inference", cases, repeats=1 if quick else 3, warmup=0)
