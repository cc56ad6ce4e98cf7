"""A home with two segmentation runs that predicted one large (3000 x 3000) image: the Predict page
draws them as tile layers. The predictions are written directly (no model runs); the page only reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import yaml
from rasterio.transform import from_origin

from geoft.app.run_store import RunStore

SIZE = 3000
CHECKPOINT = "best-epoch=00"


def _write(path: Path, array: np.ndarray, dtype: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0], dtype=dtype,
        crs="EPSG:32633", transform=from_origin(400000, 5000000, 10, 10), tiled=True, compress="deflate",
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array.astype(dtype))
    return path


def classes(size: int, shift: int) -> np.ndarray:
    """Stripes of two classes, ``shift`` pixels apart between runs (the swipe shows the difference)."""
    cols = np.arange(size)[None, None, :] + shift
    return np.broadcast_to(((cols // 300) % 2).astype(np.uint8), (1, size, size))


def make_large_runs(home: Path, size: int = SIZE) -> dict[str, Path]:
    """The dataset (image + label), two runs with a fake checkpoint and a prediction each."""
    data = home / "data" / "big"
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    image = np.stack([np.broadcast_to(ramp[None, :], (size, size)), np.broadcast_to(ramp[:, None], (size, size)),
                      np.full((size, size), 128, np.float32)])  # fmt: skip
    image_path = _write(data / "val" / "images" / "scene.tif", image, "uint8")
    _write(data / "val" / "labels" / "scene_mask.tif", classes(size, 0), "uint8")
    config = {
        "data": {
            "class_path": "geoft.datamodules.GenericNonGeoSegmentationDataModule",
            "init_args": {
                "num_classes": 2, "val_data_root": str(data / "val" / "images"),
                "val_label_data_root": str(data / "val" / "labels"), "img_grep": "*.tif",
                "label_grep": "*_mask.tif", "means": [100.0] * 3, "stds": [50.0] * 3,
                "dataset_bands": ["RED", "GREEN", "BLUE"],
            },
        },
        "model": {"class_path": "geoft.tasks.SemanticSegmentationTask", "init_args": {"class_names": ["a", "b"]}},
    }  # fmt: skip
    store = RunStore(home / "runs" / "runs.sqlite")
    out = {"image": image_path}
    for run_id, shift in (("big1", 0), ("big2", 150)):
        run_dir = home / "runs" / run_id
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints" / f"{CHECKPOINT}.ckpt").write_bytes(b"not loaded: the prediction exists")
        (run_dir / "submitted_config.yaml").write_text(yaml.safe_dump(config))
        out[run_id] = _write(
            run_dir / "predictions" / f"scene_{CHECKPOINT}_prediction.tif", classes(size, shift), "uint8"
        )
        store.add(run_id, f"run-{run_id}", run_dir, "cpu", status="completed")
    return out
