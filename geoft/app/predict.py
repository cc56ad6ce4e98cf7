"""Predict a scene with a trained run and write a georeferenced GeoTIFF (tiled, any size)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from geoft.app.config_safety import check_class_paths
from geoft.app.exporting import best_checkpoint
from geoft.app.run_store import RunRecord
from geoft.errors import ConfigError, DataError


def run_config(run: RunRecord) -> dict[str, Any]:
    try:
        config = yaml.safe_load(run.config_path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read the config of run {run.id}: {err}") from err
    check_class_paths(config)
    return config


def load_task(run: RunRecord, checkpoint: Path | None = None) -> Any:
    """The run's task rebuilt from its config and ``checkpoint`` (default: the best), on CPU, in eval mode."""
    from geoft.export_cli import load_checkpoint, task_from_checkpoint

    ckpt_path = checkpoint or best_checkpoint(run)
    task = task_from_checkpoint(load_checkpoint(ckpt_path), run_config(run), str(ckpt_path))
    task.eval()
    return task


def _band_indexes(data_args: dict[str, Any]) -> list[int] | None:
    """1-based band indexes to read when the config trains on a subset of the file's bands."""
    dataset_bands, output_bands = data_args.get("dataset_bands"), data_args.get("output_bands")
    if not dataset_bands or not output_bands or list(output_bands) == list(dataset_bands):
        return None
    missing = [b for b in output_bands if b not in dataset_bands]
    if missing:
        raise ConfigError(f"output_bands {missing} are not in dataset_bands {dataset_bands}")
    return [list(dataset_bands).index(b) + 1 for b in output_bands]


def _tile_size(data_args: dict[str, Any], image_path: Path) -> int:
    """Tiles the size of the training chips (what the model saw), a multiple of 16, at most 224."""
    import rasterio

    from geoft.app.data_summary import config_chips

    chips = config_chips(data_args)
    reference = chips[0][1] if chips else image_path
    with rasterio.open(reference) as src:
        side = min(src.height, src.width, 224)
    return max(16, side - side % 16)


def predict_to_geotiff(
    run: RunRecord,
    image_path: Path,
    out_path: Path,
    progress: Callable[[int, int], None] | None = None,
    class_colors: Sequence[Sequence[int]] | None = None,
    checkpoint: Path | None = None,
) -> Path:
    """Predict a GeoTIFF scene of any size with ``run`` (block by block, tiled) into a class-map GeoTIFF.

    ``progress(done, total)`` is called as blocks finish; ``checkpoint`` defaults to the best one.
    """
    from geoft.export_cli import checkpoint_normalisation, load_checkpoint
    from geoft.io.scene import predict_scene_with_task

    config = run_config(run)
    data_args = (config.get("data") or {}).get("init_args") or {}
    means, stds = data_args.get("means"), data_args.get("stds")
    if not isinstance(means, list) or not isinstance(stds, list):
        stored = checkpoint_normalisation(load_checkpoint(checkpoint or best_checkpoint(run)))
        if stored is None:
            raise DataError(
                f"run {run.id} has no normalisation statistics in its config or checkpoint",
                hint="add data.init_args.means/stds to the config",
            )
        means, stds = stored
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = predict_scene_with_task(
        load_task(run, checkpoint),
        image_path,
        out_path,
        means=means,
        stds=stds,
        bands=_band_indexes(data_args),
        constant_scale=float(data_args.get("constant_scale") or 1.0),
        no_data_replace=data_args.get("no_data_replace", 0.0),
        params={"crop": _tile_size(data_args, Path(image_path)), "batch_size": 8},
        class_colors=[list(c) for c in class_colors] if class_colors else None,
        device="cpu",
        progress=progress,
    )
    return Path(result.prediction)
