"""Predict a scene with a trained run and write a georeferenced GeoTIFF (tiled, any size)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
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


def load_task(run: RunRecord) -> Any:
    """The run's task from its best checkpoint, on CPU, in eval mode."""
    from geoft.registry import import_object

    config = run_config(run)
    cls = import_object(config["model"]["class_path"])
    task = cls.load_from_checkpoint(str(best_checkpoint(run)), map_location="cpu")
    task.eval()
    return task


def _normalise(image: np.ndarray, means: Sequence[float] | None, stds: Sequence[float] | None) -> np.ndarray:
    x = image.astype(np.float32)
    if means is None or stds is None:
        return x
    if len(means) != x.shape[0] or len(stds) != x.shape[0]:
        raise DataError(
            f"the image has {x.shape[0]} bands but the run was trained on {len(means)}",
            hint="pick an image with the same bands as the training data",
        )
    return (x - np.asarray(means, np.float32)[:, None, None]) / np.asarray(stds, np.float32)[:, None, None]


def predict_to_geotiff(
    run: RunRecord, image_path: Path, out_path: Path, crop: int | None = None, batch_size: int = 8
) -> Path:
    """Tiled inference of ``image_path`` with ``run``; a class map with colour table at ``out_path``."""
    import rasterio
    import torch

    from geoft.io.geotiff import write_array
    from geoft.tasks.tiled_inference import tiled_inference

    config = run_config(run)
    data_args = (config.get("data") or {}).get("init_args") or {}
    task_args = (config.get("model") or {}).get("init_args") or {}
    with rasterio.open(image_path) as src:
        image = src.read()
        crs, transform, nodata = src.crs, src.transform, src.nodata
    invalid = np.zeros(image.shape[1:], dtype=bool)
    if nodata is not None:
        invalid |= np.all(image == nodata, axis=0)
    x = torch.from_numpy(_normalise(image, data_args.get("means"), data_args.get("stds")))[None]
    task = load_task(run)
    side = crop or int(data_args.get("chip_size") or min(224, *image.shape[1:]))
    side = max(16, side - side % 16)
    with torch.no_grad():
        logits = tiled_inference(task, x, {"crop": side, "batch_size": batch_size})
    classes = logits.argmax(dim=1)[0].numpy().astype(np.int64)
    names = task_args.get("class_names")
    num_classes = int(logits.shape[1])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_array(
        out_path,
        classes,
        kind="classes",
        crs=crs,
        transform=transform,
        nodata_mask=invalid,
        num_classes=num_classes,
        class_names=names,
    )
    return out_path
