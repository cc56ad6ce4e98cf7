"""Predict a scene with a trained run and write a georeferenced GeoTIFF (tiled, any size)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geoft.app.run_store import RunRecord
from geoft.app.trained import best_checkpoint, load_task
from geoft.app.trained import run_config as run_config  # the Predict page reads it from here
from geoft.errors import ConfigError

DETECTION_TASKS = ("ObjectDetectionTask",)  # geoft's and the reference's class name


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


def _reading(run: RunRecord, checkpoint: Path | None) -> dict[str, Any]:
    """How the scene functions read pixels as the model was trained on them: ``means``, ``stds``,
    ``bands``, ``constant_scale``, ``no_data_replace`` (the same arguments in both)."""
    from geoft.runs.restore import data_arguments, load_checkpoint, normalisation

    config = run_config(run)
    norm = normalisation(config, lambda: load_checkpoint(checkpoint or best_checkpoint(run)))
    return {
        "means": norm.means,
        "stds": norm.stds,
        "bands": _band_indexes(data_arguments(config)),
        "constant_scale": norm.constant_scale,
        "no_data_replace": norm.no_data_replace,
    }


def predict_to_geotiff(
    run: RunRecord,
    image_path: Path,
    out_path: Path,
    progress: Callable[[int, int], None] | None = None,
    class_colors: Sequence[Sequence[int]] | None = None,
    checkpoint: Path | None = None,
    uncertainty: str | None = None,
) -> Path:
    """Predict a GeoTIFF scene of any size with ``run`` (block by block, tiled) into a class-map GeoTIFF.

    ``progress(done, total)`` is called as blocks finish; ``checkpoint`` defaults to the best one;
    ``uncertainty`` (``entropy``/``margin``) also writes ``<out stem>_<kind>.tif`` beside it.
    """
    from geoft.io.scene import predict_scene_with_task
    from geoft.runs.restore import data_arguments

    reading = _reading(run, checkpoint)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = predict_scene_with_task(
        load_task(run, checkpoint),
        image_path,
        out_path,
        **reading,
        params={"crop": _tile_size(data_arguments(run_config(run)), Path(image_path)), "batch_size": 8},
        class_colors=[list(c) for c in class_colors] if class_colors else None,
        device="cpu",
        progress=progress,
        uncertainty=uncertainty,
    )
    return Path(result.prediction)


def is_detection_run(config: dict[str, Any]) -> bool:
    """True when the run's task is object detection (the page then shows boxes, not a class map)."""
    model = config.get("model") or {}
    return str(model.get("class_path", "")).rsplit(".", 1)[-1] in DETECTION_TASKS


def predict_detections(
    run: RunRecord,
    image_path: Path,
    out_path: Path,
    progress: Callable[[int, int], None] | None = None,
    checkpoint: Path | None = None,
) -> Path:
    """Detect objects on a GeoTIFF of any size with ``run`` (tile by tile) into ``out_path`` (.geojson).

    Every detection the model returns is kept (score threshold 0), whatever the run's
    ``score_threshold``: the page filters by score afterwards, without predicting again.
    """
    from geoft.io.detection_scene import predict_scene_detections
    from geoft.runs.restore import data_arguments

    task = load_task(run, checkpoint)
    task.hparams["score_threshold"] = 0.0
    tile = _tile_size(data_arguments(run_config(run)), Path(image_path))
    result = predict_scene_detections(
        task,
        image_path,
        out_path,
        **_reading(run, checkpoint),
        tile_size=tile,
        overlap=tile // 4,
        device="cpu",
        progress=progress,
    )
    return result.paths[0]
