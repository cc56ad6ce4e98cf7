"""Teach by drawing, on real data: a few water / not-water shapes drawn over the Sen1Floods11 chip train
a model that maps water on the held-out quadrant, next to the same model trained on the full label.

The shapes are what the map returns: GeoJSON polygons in WGS84, here squares of 16x16 pixels placed
where the label is all water or all land in the three training quadrants. They are saved as a
GeoPackage in the scene's CRS, cut into sparse label chips (unlabelled pixels ignored), and trained on
with geoft's generic segmentation datamodule.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning
import numpy as np
import pytest
import rasterio
import torch

from benchmarks.precision_real import (
    S2_BANDS,
    USED_BANDS,
    quiet_trainer,
    small_water_cnn,
)
from benchmarks.scenes import cut_into_quadrant_tiles
from geoft.datamodules import GenericNonGeoSegmentationDataModule
from geoft.datasets.drawn_labels import save_drawn_labels, write_label_chips
from geoft.errors import DataError
from geoft.tasks import SemanticSegmentationTask

CLASSES = ["not_water", "water"]
BOX = 16
PER_CLASS = 6


def drawn_squares(label: np.ndarray, transform: rasterio.Affine, half: int) -> list[dict]:
    """GeoJSON squares where the label is uniform, spread over the three training quadrants."""
    candidates: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    for row in range(0, label.shape[0] - BOX, BOX):
        for col in range(0, label.shape[1] - BOX, BOX):
            if row >= half and col >= half:
                continue  # the held-out quadrant
            block = label[row : row + BOX, col : col + BOX]
            for value in (0, 1):
                if (block == value).all():
                    candidates[value].append((row, col))
    features = []
    for value, places in candidates.items():
        for row, col in places[:: max(1, len(places) // PER_CLASS)][:PER_CLASS]:
            corners = [(col, row), (col + BOX, row), (col + BOX, row + BOX), (col, row + BOX), (col, row)]
            ring = [list(transform * corner) for corner in corners]  # the chip is in EPSG:4326 already
            features.append(
                {
                    "type": "Feature",
                    "properties": {"class": CLASSES[value]},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    return features


def band_statistics(image: Path) -> tuple[list[float], list[float]]:
    with rasterio.open(image) as src:
        data = src.read([S2_BANDS.index(b) + 1 for b in USED_BANDS]).astype(np.float64)
    return data.mean(axis=(1, 2)).tolist(), data.std(axis=(1, 2)).tolist()


def water_iou(
    train_dm: GenericNonGeoSegmentationDataModule, test_dm: GenericNonGeoSegmentationDataModule
) -> float:
    lightning.seed_everything(0, verbose=False)
    task = SemanticSegmentationTask(
        model=small_water_cnn(len(USED_BANDS)),
        loss="ce",
        ignore_index=-1,
        class_names=CLASSES,
        lr=5e-3,
        optimizer="AdamW",
    )
    trainer = quiet_trainer(epochs=8, precision="32-true")
    trainer.fit(task, train_dm)
    with torch.no_grad():
        return trainer.test(task, test_dm, verbose=False)[0]["test/IoU_water"]


@pytest.mark.slow
@pytest.mark.real_data
def test_a_few_drawn_shapes_map_water_on_the_held_out_quadrant(real_data: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    source = real_data / "sen1floods11_sample"
    scene, label_file = source / "Spain_7370579_S2Hand.tif", source / "Spain_7370579_LabelHand.tif"
    with rasterio.open(label_file) as src:
        label, transform = src.read(1), src.transform
    features = drawn_squares(label, transform, half=label.shape[0] // 2)
    assert sum(f["properties"]["class"] == "water" for f in features) == PER_CLASS

    drawn = save_drawn_labels(features, scene, CLASSES, tmp_path / "drawn.gpkg")
    chips = write_label_chips(scene, drawn, CLASSES, tmp_path / "chips", chip_size=64)
    drawn_pixels = sum(chips.labelled_pixels.values())
    assert chips.labelled_pixels == {"not_water": PER_CLASS * BOX * BOX, "water": PER_CLASS * BOX * BOX}

    tiles = tmp_path / "tiles"
    cut_into_quadrant_tiles(scene, label_file, tiles, 64)
    means, stds = band_statistics(scene)
    common = dict(
        num_classes=2, batch_size=4, dataset_bands=S2_BANDS, output_bands=USED_BANDS, no_data_replace=0,
        class_names=CLASSES, means=means, stds=stds,
    )  # fmt: skip
    sparse = GenericNonGeoSegmentationDataModule(**common, **chips.datamodule_init_args())
    full = GenericNonGeoSegmentationDataModule(
        **common,
        ignore_index=-1,
        train_data_root=tiles / "train",
        test_data_root=tiles / "test",
        img_grep="*_S2Hand.tif",
        label_grep="*_LabelHand.tif",
    )
    from_drawn = water_iou(sparse, full)
    from_full = water_iou(full, full)
    full_pixels = int((label[:256, :] >= 0).sum() + (label[256:, :256] >= 0).sum())
    print(
        f"teach by drawing, held-out quadrant water IoU: {from_drawn:.3f} from {len(features)} drawn squares "
        f"({drawn_pixels} labelled pixels) vs {from_full:.3f} from the full label ({full_pixels} pixels); "
        f"{time.perf_counter() - start:.1f}s"
    )
    assert from_drawn > 0.4  # always "not water" scores 0
    assert from_full > 0.4


def test_bad_drawings_are_named(tmp_path: Path, real_data: Path) -> None:
    scene = real_data / "sen1floods11_sample" / "Spain_7370579_S2Hand.tif"
    square = {"type": "Polygon", "coordinates": [[[-1.0, 38.0], [-0.99, 38.0], [-0.99, 38.01], [-1.0, 38.0]]]}
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    features = [
        {"properties": {"class": "forest"}, "geometry": square},
        {
            "properties": {"class": "water"},
            "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        },
        {"properties": {"class": "water"}, "geometry": bowtie},
    ]
    with pytest.raises(DataError) as err:
        save_drawn_labels(features, scene, CLASSES, tmp_path / "drawn.gpkg")
    text = str(err.value)
    assert (
        "shape 0: class 'forest'" in text
        and "shape 1: a 'LineString'" in text
        and "shape 2: self-intersecting" in text
    )
    assert not (tmp_path / "drawn.gpkg").exists()
    far = [
        {
            "properties": {"class": "water"},
            "geometry": {**square, "coordinates": [[[10, 10], [10.1, 10], [10.1, 10.1], [10, 10]]]},
        }
    ]
    save_drawn_labels(far, scene, CLASSES, tmp_path / "far.gpkg")
    with pytest.raises(DataError, match="cover no pixel"):
        write_label_chips(scene, tmp_path / "far.gpkg", CLASSES, tmp_path / "chips")


def test_label_chips_command(tmp_path: Path, real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from geoft.cli import main

    scene = real_data / "sen1floods11_sample" / "Spain_7370579_S2Hand.tif"
    with rasterio.open(scene) as src:
        (west, north), (east, south) = src.transform * (10, 10), src.transform * (40, 30)
    ring = [[west, north], [east, north], [east, south], [west, south], [west, north]]
    shapes = [{"properties": {"class": "water"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]
    save_drawn_labels(shapes, scene, CLASSES, tmp_path / "drawn.gpkg")
    args = [
        "label-chips",
        "--scene",
        str(scene),
        "--labels",
        str(tmp_path / "drawn.gpkg"),
        "--out",
        str(tmp_path / "chips"),
    ]
    assert main([*args, "--classes", "not_water,water", "--chip_size", "64"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 1 chips" in printed and "not_water 0, water 600" in printed
    with rasterio.open(tmp_path / "chips" / "labels" / "Spain_7370579_S2Hand_r0_c0.tif") as chip:
        labels = chip.read(1)
    assert (labels == 1).sum() == 30 * 20 and (labels == -1).sum() == 64 * 64 - 600
    assert main([*args, "--classes", "land,sea"]) == 2
    assert "class 'water' is not one of land, sea" in capsys.readouterr().err
