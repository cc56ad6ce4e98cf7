"""Teach by drawing through the app's training path, on real data.

On the Sen1Floods11 chip, water / not-water squares arrive as the map returns them (WGS84 GeoJSON, no
class: each takes the class chosen when it was drawn), are saved by the page's function, trained on by
a real ``geoft fit`` through the job runner, and the whole chip is predicted with its entropy. Water IoU
is measured outside the drawn squares (with ``GEOFT_TEACH_FULL_LABEL=1``, next to the same model
trained on the full label, which costs minutes more); a second
round with more squares starts from the first round's best checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from geoft.app.jobs import JobRunner
from geoft.app.run_store import COMPLETED, RunStore
from geoft.app.teaching import (
    INITIAL_WEIGHTS,
    labels_path,
    predict_round,
    saved_features,
    start_round,
    store_drawings,
    teach_config,
)
from geoft.datasets.drawn_labels import LabelChips, rasterize_labels, read_drawn_labels
from tests.tasks.test_task_drawn_labels_real import CLASSES, drawn_squares

PRESET = "ResNet18 (timm) + U-Net (smp)"
EPOCHS = 8
# GEOFT_TEACH_FULL_LABEL=1 also trains the same preset on the full label, for the comparison in the docs
FULL_LABEL_SWITCH = "GEOFT_TEACH_FULL_LABEL"


def full_label_chips(scene: Path, label_file: Path, out: Path, size: int = 64) -> LabelChips:
    """The whole chip and its full label as ``size`` tiles (label -1 where Sen1Floods11 has no label)."""
    from rasterio.windows import Window

    (out / "images").mkdir(parents=True), (out / "labels").mkdir(parents=True)
    with rasterio.open(scene) as src, rasterio.open(label_file) as lab:
        for row in range(0, src.height, size):
            for col in range(0, src.width, size):
                window = Window(col, row, size, size)
                common = {
                    "width": size,
                    "height": size,
                    "transform": src.window_transform(window),
                    "crs": src.crs,
                }
                with rasterio.open(
                    out / "images" / f"t{row}_{col}.tif", "w", **{**src.profile, **common}
                ) as dst:
                    dst.write(src.read(window=window))
                with rasterio.open(
                    out / "labels" / f"t{row}_{col}.tif",
                    "w",
                    driver="GTiff",
                    count=1,
                    dtype="int16",
                    **common,
                ) as dst:
                    dst.write(lab.read(1, window=window)[None])
    return LabelChips(out / "images", out / "labels", (512 // size) ** 2, {}, -1)


def water_iou(prediction: Path, label: np.ndarray, keep: np.ndarray) -> float:
    with rasterio.open(prediction) as src:
        predicted = src.read(1)
    keep = keep & (label >= 0)
    inter = ((predicted == 1) & (label == 1) & keep).sum()
    union = (((predicted == 1) | (label == 1)) & keep).sum()
    return float(inter / union)


def as_drawn(features: list[dict]) -> list[dict]:
    """What Leaflet.draw reports for a new shape: geometry only, no properties."""
    return [{"type": "Feature", "properties": {}, "geometry": f["geometry"]} for f in features]


@pytest.mark.slow
@pytest.mark.real_data
def test_shapes_drawn_in_the_app_train_a_water_map_and_retrain_from_the_last_model(
    real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    source = real_data / "sen1floods11_sample"
    scene, label_file = source / "Spain_7370579_S2Hand.tif", source / "Spain_7370579_LabelHand.tif"
    with rasterio.open(label_file) as src:
        label, transform = src.read(1), src.transform
    squares = drawn_squares(label, transform, half=label.shape[0] // 2)
    home = tmp_path / "home"
    runner = JobRunner(RunStore(tmp_path / "runs" / "runs.sqlite"), tmp_path / "runs")
    drawn = labels_path(home, scene)

    # drawn one class after the other, as on the page: first the water squares, then the rest
    water = [f for f in squares if f["properties"]["class"] == "water"]
    land = [f for f in squares if f["properties"]["class"] == "not_water"]
    assert store_drawings(as_drawn(water), scene, CLASSES, "water", drawn)
    reported = saved_features(drawn, scene, CLASSES) + as_drawn(land)
    assert store_drawings(reported, scene, CLASSES, "not_water", drawn)
    shapes = read_drawn_labels(drawn, scene, CLASSES)
    assert sorted(shapes["class"]) == sorted(f["properties"]["class"] for f in squares)
    outside = rasterize_labels(shapes, CLASSES, transform, *label.shape) == -1

    first = start_round(runner, home, scene, CLASSES, preset=PRESET, max_epochs=EPOCHS)
    done = runner.wait(first.id, timeout_s=600)
    assert done.status == COMPLETED, done.error
    prediction, entropy = predict_round(done, scene)
    with rasterio.open(prediction) as pred, rasterio.open(entropy) as ent, rasterio.open(scene) as src:
        assert (pred.shape, pred.crs, pred.transform) == (src.shape, src.crs, src.transform)
        assert (ent.shape, ent.transform, ent.dtypes[0]) == (src.shape, src.transform, "float32")
        spread = ent.read(1)
    assert np.nanmax(spread) <= np.log(2) + 1e-5 and np.nanmin(spread) >= 0
    from_drawn = water_iou(prediction, label, outside)

    message = f"\nwater IoU outside the {len(squares)} drawn squares: drawn labels {from_drawn:.3f}"
    if os.environ.get(FULL_LABEL_SWITCH) == "1":  # the comparison costs a full-label run (minutes)
        full = teach_config(
            full_label_chips(scene, label_file, tmp_path / "full"),
            scene,
            CLASSES,
            preset=PRESET,
            max_epochs=EPOCHS,
        )
        reference = runner.wait(runner.submit(full, "full-label").id, timeout_s=600)
        assert reference.status == COMPLETED, reference.error
        message += f", full label {water_iou(predict_round(reference, scene)[0], label, outside):.3f}"
    print(f"{message} ({PRESET}, {EPOCHS} epochs)")
    assert from_drawn > 0.3  # always "not water" scores 0

    # round 2: more shapes, retrained from round 1's best checkpoint
    more = [f for f in drawn_squares(label, transform, half=label.shape[0]) if f not in squares][-2:]
    assert len(more) == 2
    store_drawings(saved_features(drawn, scene, CLASSES) + as_drawn(more), scene, CLASSES, "water", drawn)
    second = start_round(runner, home, scene, CLASSES, preset=PRESET, max_epochs=1)
    config = yaml.safe_load(second.submitted_config_path.read_text())
    [callback] = [c for c in config["trainer"]["callbacks"] if c["class_path"] == INITIAL_WEIGHTS]
    assert Path(callback["init_args"]["ckpt_path"]) == done.folder.best()
    finished = runner.wait(second.id, timeout_s=600)
    assert finished.status == COMPLETED, finished.error
    assert "starting from the weights of" in finished.log_path.read_text()
