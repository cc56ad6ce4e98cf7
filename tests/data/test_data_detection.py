"""Detection datasets: GeoJSON/GeoPackage, COCO and YOLO labels on georeferenced chips, problems named by file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from shapely.geometry import box

from geoft.datamodules.detection import GenericObjectDetectionDataModule
from geoft.datasets.detection import GenericObjectDetectionDataset
from geoft.datasets.detection_demo import CRS, generate_detection_chips
from geoft.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def chips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    root = tmp_path_factory.mktemp("chips")
    return root, generate_detection_chips(root, n=5, size=48, num_classes=2, empty_every=5, seed=3)


def _dataset(root: Path, fmt: str, **kwargs: Any) -> GenericObjectDetectionDataset:
    labels = {
        "geojson": {"label_data_root": root / "labels", "class_field": "class"},
        "yolo": {"label_data_root": root / "yolo", "label_grep": "*.txt"},
        "coco": {"label_data_root": root / "coco.json", "class_names": ["class0", "class1"]},
    }[fmt]
    return GenericObjectDetectionDataset(root / "images", num_classes=2, **{**labels, **kwargs})


@pytest.mark.parametrize("fmt", ["geojson", "yolo", "coco"])
def test_every_label_format_gives_the_generators_boxes(chips: tuple[Path, list[Any]], fmt: str) -> None:
    root, truth = chips
    dataset = _dataset(root, fmt)
    assert len(dataset) == len(truth)
    for i, chip in enumerate(truth):
        sample = dataset[i]
        assert sample["image"].shape == (3, 48, 48) and sample["filename"] == str(chip.image)
        np.testing.assert_allclose(
            sample["boxes"].numpy().reshape(-1, 4), np.reshape(chip.boxes, (-1, 4)), atol=1e-3
        )
        assert sample["labels"].tolist() == chip.labels
    assert len(dataset[4]["boxes"]) == 0  # the empty chip: no objects, still a sample


def test_masks_are_the_polygons_and_yolo_boxes_cannot_make_masks(chips: tuple[Path, list[Any]]) -> None:
    root, truth = chips
    sample = _dataset(root, "geojson", return_masks=True)[0]
    x0, y0, x1, y1 = truth[0].boxes[0]
    assert sample["masks"].dtype == torch.uint8 and sample["masks"].shape[1:] == (48, 48)
    assert int(sample["masks"][0].sum()) == (x1 - x0) * (y1 - y0)
    assert int(sample["masks"][0, y0:y1, x0:x1].sum()) == (x1 - x0) * (y1 - y0)
    with pytest.raises(DataError, match=r"chip_000\.txt.*no polygon"):
        _dataset(root, "yolo", return_masks=True)


def _chip(folder: Path, name: str = "a", size: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.tif"
    transform = rasterio.transform.from_origin(1000.0, 2000.0, 1.0, 1.0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=2,
        dtype="float32",
        crs=CRS,
        transform=transform,
    ) as dst:
        dst.write(np.ones((2, size, size), np.float32))
    return path


def _geojson(path: Path, geometries: list[Any], classes: list[Any], crs: str = CRS) -> Path:
    gpd.GeoDataFrame({"class": classes}, geometry=geometries, crs=crs).to_file(path, engine="pyogrio")
    return path


def test_vector_objects_cut_by_the_border_are_clipped_and_slivers_dropped(tmp_path: Path) -> None:
    _chip(tmp_path / "img")
    # map x = 1000 + col, map y = 2000 - row
    inside = box(1005, 1990, 1015, 1995)  # cols 5..15, rows 5..10
    cut = box(990, 1980, 1010, 1985)  # starts 10 px left of the chip
    sliver = box(1039.5, 1970, 1045, 1975)  # half a pixel inside the right edge
    _geojson(tmp_path / "lab" / "a.geojson", [inside, cut, sliver], [0, 0, 0]) if (
        tmp_path / "lab"
    ).mkdir() is None else None
    dataset = GenericObjectDetectionDataset(
        tmp_path / "img", 1, label_data_root=tmp_path / "lab", class_field="class"
    )
    assert dataset[0]["boxes"].tolist() == [[5.0, 5.0, 15.0, 10.0], [0.0, 15.0, 10.0, 20.0]]
    assert dataset.dropped == 1


def test_geopackage_in_another_crs_is_reprojected(tmp_path: Path) -> None:
    _chip(tmp_path / "img")
    (tmp_path / "lab").mkdir()
    frame = gpd.GeoDataFrame({"class": ["car"]}, geometry=[box(1005, 1990, 1015, 1995)], crs=CRS).to_crs(
        "EPSG:4326"
    )
    frame.to_file(tmp_path / "lab" / "a.gpkg", engine="pyogrio")
    dataset = GenericObjectDetectionDataset(
        tmp_path / "img", 1, label_data_root=tmp_path / "lab", label_grep="*.gpkg",
        class_field="class", class_names=["car"],
    )  # fmt: skip
    np.testing.assert_allclose(dataset[0]["boxes"].numpy(), [[5, 5, 15, 10]], atol=1e-3)


def test_bad_annotations_are_reported_with_their_file(tmp_path: Path) -> None:
    _chip(tmp_path / "img", "a")
    _chip(tmp_path / "img", "b")
    _chip(tmp_path / "img", "c")
    (tmp_path / "lab").mkdir()
    bowtie = "POLYGON ((1001 1999, 1010 1990, 1010 1999, 1001 1990, 1001 1999))"
    gpd.GeoDataFrame({"class": [0]}, geometry=gpd.GeoSeries.from_wkt([bowtie]), crs=CRS).to_file(
        tmp_path / "lab" / "a.geojson", engine="pyogrio"
    )
    _geojson(tmp_path / "lab" / "b.geojson", [box(5000, 5000, 5010, 5010)], [0])
    _geojson(tmp_path / "lab" / "c.geojson", [box(1005, 1990, 1015, 1995)], [7])
    with pytest.raises(DataError) as err:
        GenericObjectDetectionDataset(
            tmp_path / "img", 2, label_data_root=tmp_path / "lab", class_field="class"
        )
    text = str(err.value)
    assert "3 problems" in text
    assert "a.geojson: feature 0 has an invalid geometry (Self-intersection" in text
    assert "b.geojson: feature 0 lies outside the image" in text
    assert "c.geojson: feature 0 has class 7, not 0..1" in text
    lenient = GenericObjectDetectionDataset(
        tmp_path / "img", 2, label_data_root=tmp_path / "lab", class_field="class", strict=False
    )
    assert len(lenient) == 0 and {p.code for p in lenient.problems} == {
        "bad_geometry",
        "object_outside_image",
        "unknown_class",
    }


def test_bad_yolo_and_coco_lines_are_reported(tmp_path: Path) -> None:
    _chip(tmp_path / "img", "a")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "a.txt").write_text("0 0.5 0.5 0.2\n3 0.5 0.5 0.1 0.1\n0 1.5 1.5 0.1 0.1\n")
    with pytest.raises(DataError) as err:
        GenericObjectDetectionDataset(tmp_path / "img", 1, label_data_root=tmp_path / "y", label_grep="*.txt")
    text = str(err.value)
    assert "a.txt: line 1 has 3 numbers" in text
    assert "a.txt: line 2 has class '3'" in text
    assert "a.txt: line 3 lies outside the image" in text
    coco = {"images": [{"id": 1, "file_name": "a.tif", "width": 40, "height": 40}],
            "annotations": [{"id": 9, "image_id": 1, "category_id": 5, "bbox": [1, 1, 5, 5]}],
            "categories": [{"id": 1, "name": "car"}]}  # fmt: skip
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    with pytest.raises(DataError, match=r"coco\.json: annotation 9 of image 'a' has category_id 5"):
        GenericObjectDetectionDataset(tmp_path / "img", 1, label_data_root=tmp_path / "coco.json")


def test_missing_labels_are_errors_unless_allowed(tmp_path: Path) -> None:
    _chip(tmp_path / "img", "a")
    _chip(tmp_path / "img", "b")
    (tmp_path / "lab").mkdir()
    _geojson(tmp_path / "lab" / "a.geojson", [box(1005, 1990, 1015, 1995)], [0])
    with pytest.raises(DataError, match=r"No label for image .*b\.tif"):
        GenericObjectDetectionDataset(tmp_path / "img", 1, label_data_root=tmp_path / "lab")
    dataset = GenericObjectDetectionDataset(
        tmp_path / "img", 1, label_data_root=tmp_path / "lab", allow_missing_labels=True
    )
    assert [len(dataset[i]["boxes"]) for i in range(2)] == [1, 0]


def test_datamodule_batches_normalises_and_flips_boxes_with_images(chips: tuple[Path, list[Any]]) -> None:
    root, truth = chips
    dm = GenericObjectDetectionDataModule(
        num_classes=2, batch_size=5, train_data_root=root / "images", train_label_data_root=root / "labels",
        class_field="class", train_transform=["hflip"], stats_cache_dir=str(root / "cache"),
    )  # fmt: skip
    dm.setup("fit")
    assert len(dm.means) == 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (5, 3, 48, 48) and len(batch["boxes"]) == 5
    torch.manual_seed(0)
    out = dm.batch_transform("train")(
        {**batch, "image": batch["image"].clone(), "boxes": list(batch["boxes"])}
    )
    for i in range(5):
        image, boxes = out["image"][i], out["boxes"][i]
        for x0, y0, x1, y1 in boxes.round().int().tolist():  # objects are bright wherever the boxes went
            assert image[:, y0:y1, x0:x1].mean() > image.mean() + 0.5
    with pytest.raises(ConfigError, match="not supported for object detection"):
        GenericObjectDetectionDataModule(num_classes=1, train_data_root=root, train_transform=["rotate"])


def _spacenet(real_data: Path, tmp_path: Path) -> Path:
    source = real_data / "spacenet_buildings_solaris"
    if not (source / "sample_geotiff.tif").is_file():
        pytest.skip(f"REAL DATA MISSING: {source} (SpaceNet sample from solaris) is absent")
    # the sample's three files have different names; links give them one name stem (no copies)
    for sub, name, target in (
        ("images", "sample_geotiff.tif", "sample_geotiff.tif"),
        ("geojson", "sample_geotiff.geojson", "geotiff_labels.geojson"),
        ("yolo", "sample_geotiff.txt", "sample_geotiff_yolo.txt"),
    ):
        (tmp_path / sub).mkdir(exist_ok=True)
        (tmp_path / sub / name).symlink_to(source / target)
    return tmp_path


def test_real_spacenet_chip_geojson_and_yolo_give_the_same_43_buildings(
    real_data: Path, tmp_path: Path
) -> None:
    root = _spacenet(real_data, tmp_path)
    vector = GenericObjectDetectionDataset(
        root / "images", 1, label_data_root=root / "geojson", class_names=["building"]
    )
    yolo = GenericObjectDetectionDataset(
        root / "images", 1, label_data_root=root / "yolo", label_grep="*.txt"
    )
    a, b = vector[0], yolo[0]
    assert a["image"].shape == (1, 900, 900)
    assert len(a["boxes"]) == len(b["boxes"]) == 43

    # the same objects (in another order); YOLO's normalised centres/sizes agree to a tenth of a pixel
    def rows(boxes: torch.Tensor) -> np.ndarray:
        values = boxes.numpy()
        return values[np.lexsort((values[:, 1].round(), values[:, 0].round()))]

    np.testing.assert_allclose(rows(a["boxes"]), rows(b["boxes"]), atol=0.1)
    masks = GenericObjectDetectionDataset(
        root / "images", 1, label_data_root=root / "geojson", return_masks=True
    )[0]
    assert masks["masks"].shape == (43, 900, 900) and bool((masks["masks"].sum((1, 2)) > 0).all())


def test_validate_data_lists_annotation_problems_without_failing(tmp_path: Path) -> None:
    from geoft.datasets.validation import validate_dataset

    _chip(tmp_path / "img", "a")
    _chip(tmp_path / "img", "b")
    (tmp_path / "lab").mkdir()
    _geojson(tmp_path / "lab" / "a.geojson", [box(1005, 1990, 1015, 1995)], [0])
    _geojson(tmp_path / "lab" / "b.geojson", [box(1005, 1990, 1015, 1995)], ["truck"])
    dm = GenericObjectDetectionDataModule(
        num_classes=1, class_names=["car"], class_field="class", means=[0.0, 0.0], stds=[1.0, 1.0],
        train_data_root=tmp_path / "img", train_label_data_root=tmp_path / "lab",
    )  # fmt: skip
    problems = validate_dataset(dm, splits=["train"])
    assert [(p.code, p.split) for p in problems if p.severity == "error"] == [("unknown_class", "train")]
    assert "b.geojson: feature 0 has class 'truck'" in problems[0].message
