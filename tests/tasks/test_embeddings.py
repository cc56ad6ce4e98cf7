"""geoft embed (folder and scene; GeoParquet and .npz), EmbeddingGenerationTask through geoft predict,
pooling, and nearest-neighbour search."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.transform import from_origin

from geoft.cli import main
from geoft.embeddings import pool_features, read_embeddings
from geoft.embeddings_search import nearest_neighbours
from geoft.errors import ConfigError


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_demo_workspace: Any) -> Path:
    root = tiny_demo_workspace(tmp_path_factory.mktemp("embed"), {"max_epochs": 1}, absolute_roots=True)
    images = root / "data" / "demo" / "train" / "images"
    shutil.copy(images / "train_0001.tif", images / "train_0001_copy.tif")
    return root


def test_folder_to_geoparquet_and_duplicate_is_nearest(workspace: Path) -> None:
    images = workspace / "data" / "demo" / "train" / "images"
    out = workspace / "train.parquet"
    args = ["embed", "-c", str(workspace / "config.yaml"), "--input", str(images), "--output", str(out)]
    assert main(args) == 0
    frame = gpd.read_parquet(out)
    chips = sorted(images.glob("*.tif"))
    assert len(frame) == len(chips) == 5
    for path in chips:
        with rasterio.open(path) as src:
            row = frame[frame["filename"] == str(path)].iloc[0]
            assert frame.crs == src.crs
            assert np.allclose(row.geometry.bounds, tuple(src.bounds))
    vectors, names = read_embeddings(out)
    assert vectors.shape == (5, 256)  # prithvi_eo_tiny: D = 256
    query = names.index(str(images / "train_0001.tif"))
    best = nearest_neighbours(vectors, query, k=3)
    assert names[best[0].index].endswith("train_0001_copy.tif")
    assert best[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert best[0].similarity >= best[1].similarity


def test_scene_tiles_to_npz(workspace: Path, tmp_path: Path) -> None:
    scene = tmp_path / "scene.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(
        scene,
        "w",
        driver="GTiff",
        height=64,
        width=96,
        count=6,
        dtype="float32",
        crs="EPSG:32633",
        transform=from_origin(400000, 5000000, 10, 10),
    ) as dst:
        dst.write(rng.uniform(0, 3000, (6, 64, 96)).astype("float32"))
    out = tmp_path / "scene.npz"
    args = ["embed", "-c", str(workspace / "config.yaml"), "--input", str(scene), "--output", str(out)]
    assert main([*args, "--tile", "32", "--pooling", "cls"]) == 0
    with np.load(out) as data:
        assert data["embeddings"].shape == (6, 256)  # 2 x 3 tiles of 32 px
        bounds = data["bounds"]
        assert str(data["crs"][0]) == "EPSG:32633"
    assert bounds[:, 0].min() == 400000 and bounds[:, 2].max() == 400000 + 960
    assert bounds[:, 1].min() == 5000000 - 640 and bounds[:, 3].max() == 5000000
    assert np.allclose(bounds[:, 2] - bounds[:, 0], 320)


def test_embedding_generation_task_through_geoft_predict(workspace: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    data = config["data"]["init_args"]
    args = config["model"]["init_args"]["model_args"]
    config["model"] = {
        "class_path": "EmbeddingGenerationTask",
        "init_args": {
            "model_args": {k: v for k, v in args.items() if k == "backbone" or k.startswith("backbone_")},
            "output_dir": str(tmp_path / "out"),
            "embedding_pooling": "max",
        },
    }
    config["data"] = {
        "class_path": "GenericNonGeoImageDataModule",
        "init_args": {
            "batch_size": 2,
            "img_grep": "*.tif",
            "dataset_bands": data["dataset_bands"],
            "predict_data_root": data["test_data_root"],
            "means": data["means"],
            "stds": data["stds"],
        },
    }
    config["trainer"]["default_root_dir"] = str(tmp_path / "runs")
    path = tmp_path / "embed.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["predict", "-c", str(path)]) == 0
    frame = gpd.read_parquet(tmp_path / "out" / "embeddings.parquet")
    assert len(frame) == 2 and len(frame["embedding"][0]) == 256


def test_pooling() -> None:
    tokens = torch.tensor([[[9.0, 9.0], [1.0, 2.0], [3.0, 6.0]]])  # CLS first
    assert torch.equal(pool_features(tokens, "mean", has_cls=True), torch.tensor([[2.0, 4.0]]))
    assert torch.equal(pool_features(tokens, "cls", has_cls=True), torch.tensor([[9.0, 9.0]]))
    assert torch.equal(pool_features(tokens, "max", has_cls=True), torch.tensor([[3.0, 6.0]]))
    maps = torch.arange(8.0).reshape(1, 2, 2, 2)
    assert torch.equal(pool_features(maps, "mean", has_cls=False), torch.tensor([[1.5, 5.5]]))
    with pytest.raises(ConfigError, match="ViT"):
        pool_features(maps, "cls", has_cls=False)


def test_nearest_neighbours_by_vector_and_errors() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [2.0, 0.1]])
    found = nearest_neighbours(vectors, np.array([1.0, 0.0]), k=2)
    assert [n.index for n in found] == [0, 3]
    with pytest.raises(ConfigError, match="query index"):
        nearest_neighbours(vectors, 7)
