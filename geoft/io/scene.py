"""Predict a whole GeoTIFF scene into a GeoTIFF, block by block, in bounded memory.

The scene is split into square output blocks. For each block the tiles of the *global* tile grid
(:func:`geoft.tasks.tiled_inference.tile_starts` over the whole scene) that touch it are read in one
windowed read (a halo around the block; mirrored beyond the scene border), run through the model,
blended, and the block's pixels are written. Because every block sees exactly the tiles that cover
it in the global grid, the result equals tiling the whole scene at once, with no seams at block
borders, while memory depends only on ``block_size``, the tile size and the tile batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from geoft.errors import ConfigError, DataError
from geoft.io.geotiff import (
    describe_classes,
    float_band_names,
    output_profile,
    temporary_path,
)
from geoft.tasks.tiled_inference import (
    TiledInferenceParameters,
    accumulator_dtype,
    run_tiles,
    source_indices,
    tile_starts,
    weight_sum_1d,
    window_1d,
)

Task = Literal["segmentation", "regression"]
Normalise = Callable[[torch.Tensor], torch.Tensor] | tuple[Sequence[float], Sequence[float]] | None


@dataclass
class SceneResult:
    """What :func:`predict_scene_to_geotiff` wrote."""

    prediction: Path
    probabilities: Path | None
    height: int
    width: int
    tiles: int


def _normaliser(normalise: Normalise, channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    if normalise is None:
        return lambda x: x
    if callable(normalise):
        return normalise
    means, stds = normalise
    if len(means) != channels or len(stds) != channels:
        raise ConfigError(
            f"normalise has {len(means)} means and {len(stds)} stds for {channels} input bands",
            hint="give one mean and one std per band read from the scene",
        )
    if any(s <= 0 for s in stds):
        raise ConfigError(f"normalise: every std must be > 0, got {list(stds)}")
    mean_t = torch.tensor(means, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.tensor(stds, dtype=torch.float32).view(-1, 1, 1)
    return lambda x: (x - mean_t.to(x.device)) / std_t.to(x.device)


def _covering(starts: list[int], lo: int, hi: int, crop: int) -> list[int]:
    return [s for s in starts if s < hi and s + crop > lo]


def predict_scene_to_geotiff(
    model_forward: Callable[..., Any],
    src_path: str | Path,
    dst_path: str | Path,
    *,
    task: Task = "segmentation",
    params: TiledInferenceParameters | dict[str, Any] | None = None,
    bands: Sequence[int] | None = None,
    constant_scale: float = 1.0,
    no_data_replace: float | None = 0.0,
    normalise: Normalise = None,
    probabilities_path: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    class_colors: Sequence[str | Sequence[int]] | None = None,
    block_size: int = 512,
    gdal_cache_mb: int = 64,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> SceneResult:
    """Run tiled inference over a GeoTIFF and write the prediction as a GeoTIFF.

    Args:
        model_forward: maps normalised tiles ``[n, C, h, w]`` to logits ``[n, K, h, w]``
            (segmentation) or values ``[n, h, w]`` / ``[n, 1, h, w]`` (regression).
        src_path: input GeoTIFF; ``bands`` picks 1-based band indexes (default: all).
        dst_path: output: a ``uint8`` class map with colour table (segmentation) or a ``float32``
            raster (regression), with the input's CRS, transform and nodata mask.
        constant_scale: multiply raw values by this before normalising (as the datamodules do).
        no_data_replace: value put in input nodata pixels before the model sees them.
        normalise: ``(means, stds)`` per band, or a function on ``[C, h, w]`` tensors.
        probabilities_path: also write softmax probabilities (``float32``, one band per class).
        block_size: output block edge in pixels; memory grows with it, not with the scene.
        gdal_cache_mb: GDAL block cache while this runs (GDAL's default grows with RAM, not need).
        progress: called with ``(blocks_done, blocks_total)``.
    """
    p = TiledInferenceParameters.from_any(params)
    src_path, dst_path = Path(src_path), Path(dst_path)
    if task not in ("segmentation", "regression"):
        raise ConfigError(f"task must be 'segmentation' or 'regression', got {task!r}")
    if probabilities_path is not None and task != "segmentation":
        raise ConfigError("probabilities_path only applies to segmentation")
    if block_size < 16:
        raise ConfigError(f"block_size must be >= 16, got {block_size}")
    if not src_path.is_file():
        raise DataError(f"scene {src_path} does not exist")
    device = torch.device(device)
    # GDAL's block cache defaults to 5% of RAM and would grow with the scene; bound it.
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb):
        return _predict_scene(
            model_forward, src_path, dst_path, task, p, bands, constant_scale, no_data_replace, normalise,
            probabilities_path, class_names, class_colors, block_size, device, progress,
        )  # fmt: skip


def _predict_scene(
    model_forward: Callable[..., Any],
    src_path: Path,
    dst_path: Path,
    task: Task,
    p: TiledInferenceParameters,
    bands: Sequence[int] | None,
    constant_scale: float,
    no_data_replace: float | None,
    normalise: Normalise,
    probabilities_path: str | Path | None,
    class_names: Sequence[str] | None,
    class_colors: Sequence[str | Sequence[int]] | None,
    block_size: int,
    device: torch.device,
    progress: Callable[[int, int], None] | None,
) -> SceneResult:
    (crop_h, crop_w), (stride_h, stride_w), (halo_h, halo_w) = p.crop, p.stride, p.halo  # type: ignore[misc]
    win_h, win_w = window_1d(crop_h, p.blend), window_1d(crop_w, p.blend)
    try:
        src = rasterio.open(src_path)
    except rasterio.RasterioIOError as err:
        raise DataError(f"cannot read scene {src_path}: {err}") from err
    with src:
        indexes = list(bands) if bands is not None else list(range(1, src.count + 1))
        bad = [b for b in indexes if not 1 <= b <= src.count]
        if bad:
            raise ConfigError(f"bands {bad} are not in {src_path} (it has bands 1..{src.count})")
        norm = _normaliser(normalise, len(indexes))
        height, width = src.height, src.width
        starts_y = tile_starts(height, crop_h, stride_h, halo_h)
        starts_x = tile_starts(width, crop_w, stride_w, halo_w)
        blocks = [(r, c) for r in range(0, height, block_size) for c in range(0, width, block_size)]
        writers: dict[str, Any] = {}
        tmp_paths: list[tuple[Path, Path]] = []
        tiles_run = 0
        try:
            for done, (r0, c0) in enumerate(blocks):
                r1, c1 = min(r0 + block_size, height), min(c0 + block_size, width)
                sy = _covering(starts_y, r0, r1, crop_h)
                sx = _covering(starts_x, c0, c1, crop_w)
                y0, y1, x0, x1 = sy[0], sy[-1] + crop_h, sx[0], sx[-1] + crop_w
                rows = source_indices(y0, y1, height, p.padding)
                cols = source_indices(x0, x1, width, p.padding)
                window = Window(
                    int(cols.min()),
                    int(rows.min()),
                    int(cols.max() - cols.min() + 1),
                    int(rows.max() - rows.min() + 1),
                )
                raw = src.read(indexes, window=window, out_dtype="float32")
                valid = src.dataset_mask(window=window) > 0
                raw = raw[:, rows - rows.min()][:, :, cols - cols.min()]
                valid = valid[rows - rows.min()][:, cols - cols.min()]
                image = torch.from_numpy(raw).to(device) * constant_scale
                if no_data_replace is not None:
                    image[:, ~torch.from_numpy(valid).to(device)] = no_data_replace
                image = norm(image)[None]
                acc, _ = run_tiles(model_forward, image, [s - y0 for s in sy], [s - x0 for s in sx], p)
                tiles_run += len(sy) * len(sx)
                weights = np.outer(
                    weight_sum_1d(sy, y0, y1 - y0, win_h), weight_sum_1d(sx, x0, x1 - x0, win_w)
                )
                core = (slice(r0 - y0, r1 - y0), slice(c0 - x0, c1 - x0))
                blended = acc[0][..., core[0], core[1]] / torch.from_numpy(weights[core]).to(
                    device=acc.device, dtype=accumulator_dtype(acc.device)
                )
                blended = (
                    blended.float().contiguous()
                )  # float64 only for the exact blend; argmax is faster on float32
                nodata = ~valid[core]
                out_window = Window(c0, r0, c1 - c0, r1 - r0)
                _write_block(
                    blended, nodata, out_window, task, writers, tmp_paths, src, dst_path,
                    probabilities_path, class_names, class_colors,
                )  # fmt: skip
                if progress is not None:
                    progress(done + 1, len(blocks))
        finally:
            for dst in writers.values():
                dst.close()
        for tmp, final in tmp_paths:
            os.replace(tmp, final)
    prob = Path(probabilities_path) if probabilities_path is not None else None
    return SceneResult(prediction=dst_path, probabilities=prob, height=height, width=width, tiles=tiles_run)


def _open_outputs(
    blended: torch.Tensor,
    task: Task,
    writers: dict[str, Any],
    tmp_paths: list[tuple[Path, Path]],
    src: rasterio.io.DatasetReader,
    dst_path: Path,
    probabilities_path: str | Path | None,
    class_names: Sequence[str] | None,
    class_colors: Sequence[str | Sequence[int]] | None,
) -> None:
    common = {"height": src.height, "width": src.width, "crs": src.crs, "transform": src.transform}
    if task == "segmentation":
        if blended.ndim != 3:
            raise ValueError(
                f"segmentation model must return [n, K, h, w] logits, got per-tile {tuple(blended.shape)}"
            )
        num_classes = blended.shape[0]
        targets = [
            (
                "prediction",
                dst_path,
                output_profile(count=1, kind="classes", num_classes=num_classes, **common),
            )
        ]
        if probabilities_path is not None:
            prof = output_profile(count=num_classes, kind="float", num_classes=None, **common)
            targets.append(("probabilities", Path(probabilities_path), prof))
    else:
        if blended.ndim == 3 and blended.shape[0] != 1:
            raise ValueError(
                f"regression model must return one value per pixel, got {blended.shape[0]} channels"
            )
        targets = [
            ("prediction", dst_path, output_profile(count=1, kind="float", num_classes=None, **common))
        ]
    for key, final, profile in targets:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(final)
        dst = rasterio.open(tmp, "w", **profile)
        writers[key] = dst
        tmp_paths.append((tmp, final))
        if key == "prediction" and task == "segmentation":
            describe_classes(dst, class_names, class_colors, blended.shape[0])
        elif key == "probabilities":
            names = (
                list(class_names)
                if class_names is not None
                else [f"class_{i}" for i in range(blended.shape[0])]
            )
            float_band_names(dst, [f"p({n})" for n in names])
        else:
            float_band_names(dst, ["prediction"])


def _write_block(
    blended: torch.Tensor,
    nodata: np.ndarray,
    window: Window,
    task: Task,
    writers: dict[str, Any],
    tmp_paths: list[tuple[Path, Path]],
    src: rasterio.io.DatasetReader,
    dst_path: Path,
    probabilities_path: str | Path | None,
    class_names: Sequence[str] | None,
    class_colors: Sequence[str | Sequence[int]] | None,
) -> None:
    if not writers:
        _open_outputs(
            blended, task, writers, tmp_paths, src, dst_path, probabilities_path, class_names, class_colors
        )
    pred = writers["prediction"]
    if task == "segmentation":
        classes = blended.argmax(0).cpu().numpy().astype(pred.dtypes[0])
        classes[nodata] = pred.nodata
        pred.write(classes, 1, window=window)
        if "probabilities" in writers:
            probs = torch.softmax(blended, dim=0).float().cpu().numpy()
            probs[:, nodata] = np.nan
            writers["probabilities"].write(probs, window=window)
    else:
        values = blended.reshape(blended.shape[-2:]).float().cpu().numpy()
        values[nodata] = np.nan
        pred.write(values, 1, window=window)


def predict_scene_with_task(
    task: torch.nn.Module,
    src_path: str | Path,
    dst_path: str | Path,
    *,
    means: Sequence[float] | None = None,
    stds: Sequence[float] | None = None,
    bands: Sequence[int] | None = None,
    constant_scale: float = 1.0,
    no_data_replace: float | None = 0.0,
    params: TiledInferenceParameters | dict[str, Any] | None = None,
    probabilities_path: str | Path | None = None,
    class_colors: Sequence[str | Sequence[int]] | None = None,
    block_size: int = 512,
    device: str | torch.device | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SceneResult:
    """:func:`predict_scene_to_geotiff` with a trained geoft task (segmentation or pixel-wise regression).

    The tile parameters default to the task's ``tiled_inference_parameters``, the class names to its
    ``class_names``; ``means``/``stds`` are the datamodule's (both or neither).
    """
    kind = getattr(task, "task_kind", None)
    if kind not in ("segmentation", "regression"):
        raise ConfigError(
            f"scene prediction needs a segmentation or regression task, got {kind or type(task).__name__}"
        )
    if (means is None) != (stds is None):
        raise ConfigError("give both means and stds, or neither")
    hparams = getattr(task, "hparams", {}) or {}
    if params is None:
        params = hparams.get("tiled_inference_parameters")
    if device is None:
        device = next(task.parameters()).device
    task = task.to(device).eval()

    def forward(tiles: torch.Tensor) -> torch.Tensor:
        return task(tiles).output

    return predict_scene_to_geotiff(
        forward,
        src_path,
        dst_path,
        task=kind,
        params=params,
        bands=bands,
        constant_scale=constant_scale,
        no_data_replace=no_data_replace,
        normalise=(means, stds) if means is not None and stds is not None else None,
        probabilities_path=probabilities_path,
        class_names=hparams.get("class_names") if kind == "segmentation" else None,
        class_colors=class_colors,
        block_size=block_size,
        device=device,
        progress=progress,
    )
