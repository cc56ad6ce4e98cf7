"""Predict a whole GeoTIFF scene into a GeoTIFF, in bounded memory, running each tile once.

The scene is tiled on one *global* grid (:func:`geoft.tasks.tiled_inference.tile_starts` over the
whole scene), exactly as :func:`~geoft.tasks.tiled_inference.tiled_inference` tiles an in-memory
image, so the result equals tiling the whole scene at once. The grid is walked one row of tiles at a
time: source rows are read once into a rolling buffer (mirrored beyond the scene border), and output
rows that no later tile touches are blended and written in strips. Memory depends on the tile size
and the scene's width, never its height; scenes wider than ``max_width`` are cut into column panels
(only the tiles straddling a panel border run twice), so memory is bounded for any scene size.

The input is one GeoTIFF, one per date, or a modality dict of them (:mod:`geoft.io.scene_inputs`):
every modality and date is read in the same row strips onto the output grid, and tiles are cut alike
from all of them, so the result equals :func:`~geoft.tasks.tiled_inference.tiled_inference` on the
whole modality dict (or ``[B, C, T, H, W]`` series).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from geoft.errors import ConfigError, DataError
from geoft.io.geotiff import check_complete
from geoft.io.scene_buffers import OutputShape, PendingRows, covering, panels_of
from geoft.io.scene_inputs import Normalise, SceneRows, SceneSource, as_scene_inputs, open_scene, preparer
from geoft.io.scene_outputs import BackgroundWriter, Uncertainty, discard, storage_cause, write_block
from geoft.storage import ensure_writable_dir
from geoft.task_kinds import PIXEL_KINDS, TaskKind
from geoft.tasks.tiled_inference import (
    Image,
    TiledInferenceParameters,
    accumulator_dtype,
    map_image,
    run_tiles,
    source_indices,
    tile_starts,
    weight_sum_1d,
    window_1d,
)

Task = TaskKind | str  # a pixel-wise kind: segmentation or regression


@dataclass
class SceneResult:
    """What :func:`predict_scene_to_geotiff` wrote."""

    prediction: Path
    probabilities: Path | None
    height: int
    width: int
    tiles: int
    uncertainty: Path | None = None


def predict_scene_to_geotiff(
    model_forward: Callable[..., Any],
    src_path: SceneSource,
    dst_path: str | Path,
    *,
    task: Task = TaskKind.SEGMENTATION,
    params: TiledInferenceParameters | dict[str, Any] | None = None,
    bands: Sequence[int] | None = None,
    constant_scale: float = 1.0,
    no_data_replace: float | None = 0.0,
    normalise: Normalise = None,
    as_dict: bool | None = None,
    grid: str | None = None,
    probabilities_path: str | Path | None = None,
    uncertainty: str | None = None,
    class_names: Sequence[str] | None = None,
    class_colors: Sequence[str | Sequence[int]] | None = None,
    block_size: int = 512,
    max_width: int = 4096,
    gdal_cache_mb: int = 64,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> SceneResult:
    """Run tiled inference over a GeoTIFF (or one per date, or per modality) and write a GeoTIFF.

    Args:
        model_forward: maps normalised tiles ``[n, C, h, w]`` (``[n, C, T, h, w]`` for dates, or a
            modality dict of them) to logits ``[n, K, h, w]`` (segmentation) or values ``[n, h, w]`` /
            ``[n, 1, h, w]`` (regression).
        src_path: input GeoTIFF; a list of GeoTIFFs, one per date (stacked as ``[C, T, h, w]``); or
            ``{modality: SceneInput}``, each with its own bands, scaling, normalisation and dates.
        dst_path: output: a ``uint8`` class map with colour table (segmentation) or a ``float32``
            raster (regression), on the output grid with its CRS and transform, nodata where no input
            has data.
        bands: 1-based band indexes to read (one file or dates; default all).
        constant_scale: multiply raw values by this before normalising (as the datamodules do).
        no_data_replace: value put in input nodata pixels before the model sees them.
        normalise: ``(means, stds)`` per band, or a function on ``[C, h, w]`` tensors.
        as_dict: the model takes ``{modality: tiles}`` (default for a modality dict); False: the
            modalities' bands concatenated in their order (a ``concat_bands`` model).
        grid: the modality whose (first) file is the output grid; default the first modality.
        probabilities_path: also write softmax probabilities (``float32``, one band per class).
        uncertainty: also write ``entropy`` or ``margin`` of the probabilities (``float32``, nodata
            NaN) beside ``dst_path`` as ``<stem>_<kind>.tif``; see
            :func:`~geoft.io.scene_outputs.pixel_uncertainty`.
        block_size: rows read and written at a time.
        max_width: widest column panel predicted at once; memory grows with it, not with the scene.
        gdal_cache_mb: GDAL block cache while this runs (GDAL's default grows with RAM, not need).
        progress: called with ``(tile_rows_done, tile_rows_total)``.
    """
    p = TiledInferenceParameters.from_any(params)
    inputs = as_scene_inputs(src_path, bands, constant_scale, normalise)
    as_dict = isinstance(src_path, Mapping) if as_dict is None else as_dict
    dst_path = Path(dst_path)
    try:
        task = TaskKind.parse(task, PIXEL_KINDS, "scene prediction")
    except ConfigError:
        raise ConfigError(f"task must be 'segmentation' or 'regression', got {task!r}") from None
    if probabilities_path is not None and task is not TaskKind.SEGMENTATION:
        raise ConfigError("probabilities_path only applies to segmentation")
    extra = Uncertainty.beside(uncertainty, dst_path, task)
    if block_size < 16:
        raise ConfigError(f"block_size must be >= 16, got {block_size}")
    if max_width < 16:
        raise ConfigError(f"max_width must be >= 16, got {max_width}")
    for spec in inputs.values():
        for path in spec.paths:
            if not Path(path).is_file():
                raise DataError(f"scene {path} does not exist")
    # before any tile runs: a folder that cannot be written fails now, naming the path
    ensure_writable_dir(dst_path.parent)
    if probabilities_path is not None:
        ensure_writable_dir(Path(probabilities_path).parent)
    device = torch.device(device)
    # GDAL's block cache defaults to 5% of RAM and would grow with the scene; bound it.
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb), ExitStack() as stack:
        scene = open_scene(inputs, grid, stack)
        prepares = {
            m: preparer(spec, len(scene.indexes[m]), no_data_replace, f"{m} ({spec.paths[0]})")
            for m, spec in inputs.items()
        }

        def rows(col_lo: int, col_hi: int) -> SceneRows:
            return SceneRows(scene, prepares, col_lo, col_hi, max(block_size, 256), as_dict)

        return _predict_scene(
            model_forward, scene.grid, rows, dst_path, task, p, probabilities_path, class_names,
            class_colors, block_size, max_width, device, progress, extra,
        )  # fmt: skip


def _predict_scene(
    model_forward: Callable[..., Any],
    src: Any,
    rows: Callable[[int, int], SceneRows],
    dst_path: Path,
    task: Task,
    p: TiledInferenceParameters,
    probabilities_path: str | Path | None,
    class_names: Sequence[str] | None,
    class_colors: Sequence[str | Sequence[int]] | None,
    block_size: int,
    max_width: int,
    device: torch.device,
    progress: Callable[[int, int], None] | None,
    uncertainty: Uncertainty | None = None,
) -> SceneResult:
    """Predict the scene whose output grid is ``src``'s, its inputs read by ``rows(col_lo, col_hi)``."""
    writers: dict[str, Any] = {}
    tmp_paths: list[tuple[Path, Path]] = []

    def write_now(blended: torch.Tensor, nodata: np.ndarray, window: Window) -> None:
        write_block(
            blended, nodata, window, task, writers, tmp_paths, src, dst_path,
            probabilities_path, class_names, class_colors, uncertainty,
        )  # fmt: skip

    writer = BackgroundWriter(write_now)

    panels = panels_of(src.width, max_width)
    rows_per_panel = len(tile_starts(src.height, p.crop[0], p.stride[0], p.halo[0]))  # type: ignore[index]
    tiles_run = 0
    output_shape = OutputShape()
    try:
        for index, (c0, c1) in enumerate(panels):

            def panel_progress(done: int, index: int = index) -> None:
                if progress is not None:
                    progress(index * rows_per_panel + done, len(panels) * rows_per_panel)

            tiles_run += _predict_panel(
                model_forward, src.height, src.width, rows, p, c0, c1, block_size, device,
                writer.submit, panel_progress, output_shape,
            )  # fmt: skip
        writer.drain()
        while writers:  # closing flushes the last blocks: it can fail on a full disk too
            writers.pop(next(iter(writers))).close()
        for tmp, final in tmp_paths:
            check_complete(tmp, final)
        for tmp, final in tmp_paths:
            os.replace(tmp, final)
    except BaseException as err:
        writer.close()
        try:
            found = storage_cause(err, tmp_paths, dst_path)  # before the partial files go
        finally:
            discard(writers, tmp_paths)
        if found is None:
            raise
        raise found from err
    prob = Path(probabilities_path) if probabilities_path is not None else None
    return SceneResult(
        prediction=dst_path, probabilities=prob, height=src.height, width=src.width, tiles=tiles_run,
        uncertainty=uncertainty.path if uncertainty is not None else None,
    )  # fmt: skip


def _predict_panel(
    model_forward: Callable[..., Any],
    height: int,
    width: int,
    rows_of: Callable[[int, int], SceneRows],
    p: TiledInferenceParameters,
    c0: int,
    c1: int,
    block_size: int,
    device: torch.device,
    write: Callable[[torch.Tensor, np.ndarray, Window], None],
    progress: Callable[[int], None],
    output_shape: OutputShape,
) -> int:
    """Predict output columns ``[c0, c1)``, one row of global-grid tiles at a time; returns tiles run.

    Rows above the next tile row receive no further tiles, so they are final: they are blended,
    queued for writing and dropped from the accumulator, which never holds more than one tile height.
    A tile whose pixels inside the scene are all nodata is not run: every pixel it would touch is
    written as nodata anyway, and each valid pixel's covering tiles all run, so the blend is unchanged.
    """
    (crop_h, crop_w), (stride_h, stride_w), (halo_h, halo_w) = p.crop, p.stride, p.halo  # type: ignore[misc]
    starts_y = tile_starts(height, crop_h, stride_h, halo_h)
    sx = covering(tile_starts(width, crop_w, stride_w, halo_w), c0, c1, crop_w)
    x0, x1 = sx[0], sx[-1] + crop_w
    cols = source_indices(x0, x1, width, p.padding)
    col_lo = int(cols.min())
    cols_t = torch.from_numpy(cols - col_lo)
    source = rows_of(col_lo, int(cols.max()) + 1)
    wy = weight_sum_1d(starts_y, starts_y[0], starts_y[-1] + crop_h - starts_y[0], window_1d(crop_h, p.blend))
    wx = torch.from_numpy(weight_sum_1d(sx, x0, x1 - x0, window_1d(crop_w, p.blend))[c0 - x0 : c1 - x0])
    pending = PendingRows(block_size, write, c0)
    acc: torch.Tensor | None = None
    acc_top = starts_y[0]  # image row of acc's first row
    tiles = 0
    for i, sy in enumerate(starts_y):
        rows = source_indices(sy, sy + crop_h, height, p.padding)
        lo = int(rows.min())
        image, valid = source.rows(lo, int(rows.max()) + 1)
        rows_t = torch.from_numpy(rows - lo)
        strip = map_image(
            image,
            lambda t, rows_t=rows_t: t.index_select(-2, rows_t).index_select(-1, cols_t)[None].to(device),
        )
        y_lo, y_hi = max(sy, 0) - lo, min(sy + crop_h, height) - lo
        run_x = [
            s - x0 for s in sx if valid[y_lo:y_hi, max(s, 0) - col_lo : min(s + crop_w, width) - col_lo].any()
        ]
        tiles += len(run_x)
        if run_x:
            part = run_tiles(model_forward, strip, [0], run_x, p)[0][0]
            output_shape.learn(part)
        else:
            if output_shape.lead is None:
                output_shape.probe(model_forward, strip, p)
                tiles += 1
            lead = output_shape.lead
            part = torch.zeros((*lead, crop_h, x1 - x0), dtype=accumulator_dtype(device), device=device)
        if acc is not None:
            part[..., : acc.shape[-2], :] += acc
        acc = part
        final_end = starts_y[i + 1] if i + 1 < len(starts_y) else sy + crop_h
        out_lo, out_hi = max(acc_top, 0), min(final_end, height)
        if out_hi > out_lo:
            block = acc[..., out_lo - acc_top : out_hi - acc_top, c0 - x0 : c1 - x0]
            weights = torch.outer(torch.from_numpy(wy[out_lo - starts_y[0] : out_hi - starts_y[0]]), wx).to(
                device=block.device, dtype=block.dtype
            )
            # float64 only for the exact blend; argmax and writing are faster on float32
            blended = (block / weights).float().cpu().contiguous()
            nodata = ~valid[out_lo - lo : out_hi - lo, c0 - col_lo : c1 - col_lo]
            pending.add(blended, nodata)
        acc = acc[..., final_end - acc_top :, :]
        acc_top = final_end
        progress(i + 1)
    pending.flush()
    return tiles


_AUTOCAST = {"32-true": None, "32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def inference_autocast_dtype(precision: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a Lightning precision name (``None``: full precision).

    ``precision=None`` follows :func:`geoft.hardware.default_precision` for the device's type.
    """
    if precision is None:
        from geoft.hardware import default_precision

        precision = default_precision("gpu" if device.type == "cuda" else device.type)
    if precision not in _AUTOCAST:
        raise ConfigError(
            f"precision {precision!r} is not supported for scene prediction",
            hint=f"use one of {sorted(_AUTOCAST)}",
        )
    return _AUTOCAST[precision]


def predict_scene_with_task(
    task: torch.nn.Module,
    src_path: SceneSource,
    dst_path: str | Path,
    *,
    means: Sequence[float] | None = None,
    stds: Sequence[float] | None = None,
    bands: Sequence[int] | None = None,
    constant_scale: float = 1.0,
    no_data_replace: float | None = 0.0,
    params: TiledInferenceParameters | dict[str, Any] | None = None,
    as_dict: bool | None = None,
    grid: str | None = None,
    probabilities_path: str | Path | None = None,
    uncertainty: str | None = None,
    class_colors: Sequence[str | Sequence[int]] | None = None,
    block_size: int = 512,
    max_width: int = 4096,
    device: str | torch.device | None = None,
    precision: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SceneResult:
    """:func:`predict_scene_to_geotiff` with a trained geoft task (segmentation or pixel-wise regression).

    The tile parameters default to the task's ``tiled_inference_parameters``, the class names to its
    ``class_names``; ``means``/``stds`` are the datamodule's (both or neither; for a modality dict,
    each :class:`~geoft.io.scene_inputs.SceneInput` holds its own). ``precision`` is a
    Lightning precision name (``32-true``, ``bf16-mixed``, ``16-mixed``); by default the same as
    training's (:func:`geoft.hardware.default_precision`): bf16 autocast where the device runs it natively.
    """
    kind = getattr(task, "task_kind", None)
    if kind not in PIXEL_KINDS:
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
    device = torch.device(device)
    autocast_dtype = inference_autocast_dtype(precision, device)

    def forward(tiles: Image) -> torch.Tensor:
        with torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
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
        as_dict=as_dict,
        grid=grid,
        probabilities_path=probabilities_path,
        uncertainty=uncertainty,
        class_names=hparams.get("class_names") if kind is TaskKind.SEGMENTATION else None,
        class_colors=class_colors,
        block_size=block_size,
        max_width=max_width,
        device=device,
        progress=progress,
    )
