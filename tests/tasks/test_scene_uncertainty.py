"""Scene prediction writes a per-pixel uncertainty raster (entropy or top-2 margin) beside the class map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from geoft.errors import ConfigError
from geoft.io.scene import predict_scene_to_geotiff
from geoft.io.scene_outputs import pixel_uncertainty
from geoft.tasks.tiled_inference import tiled_inference

PARAMS = {"crop": 32, "stride": 24, "batch_size": 2}


def _scene(path: Path, height: int = 90, width: int = 70) -> np.ndarray:
    rng = np.random.default_rng(3)
    data = rng.integers(1, 3000, size=(2, height, width), dtype=np.uint16)
    data[:, :10, :15] = 0  # a nodata corner
    profile = {
        "driver": "GTiff", "height": height, "width": width, "count": 2, "dtype": "uint16", "nodata": 0,
        "crs": "EPSG:32631", "transform": from_origin(600000, 5000020, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return data


def test_entropy_of_uniform_is_log_k_and_of_one_hot_is_zero() -> None:
    uniform = torch.zeros(1, 4, 3, 3)
    one_hot = torch.full((1, 4, 3, 3), -1e4)
    one_hot[:, 2] = 1e4
    assert torch.allclose(pixel_uncertainty(uniform, "entropy"), torch.full((1, 3, 3), math.log(4)))
    assert torch.allclose(pixel_uncertainty(one_hot, "entropy"), torch.zeros(1, 3, 3), atol=1e-6)
    assert torch.allclose(pixel_uncertainty(uniform, "margin"), torch.zeros(1, 3, 3))
    assert torch.allclose(pixel_uncertainty(one_hot, "margin"), torch.ones(1, 3, 3))


@pytest.mark.parametrize("kind", ["entropy", "margin"])
@pytest.mark.parametrize("block_size", [512, 16], ids=["one-strip", "strips"])
def test_scene_uncertainty_equals_in_memory_tiled_probabilities(
    tmp_path: Path, kind: str, block_size: int
) -> None:
    data = _scene(tmp_path / "scene.tif")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 5, padding=2)
    model = lambda tiles: conv(tiles / 1000.0)  # noqa: E731 - logits of a useful spread
    result = predict_scene_to_geotiff(
        model, tmp_path / "scene.tif", tmp_path / "pred.tif", params=PARAMS, uncertainty=kind,
        block_size=block_size, max_width=64,
    )  # fmt: skip
    assert result.uncertainty == tmp_path / f"pred_{kind}.tif"
    with torch.no_grad():
        logits = tiled_inference(model, torch.from_numpy(data.astype(np.float32))[None], PARAMS)[0]
    probs = torch.softmax(logits.double(), dim=0)
    if kind == "entropy":
        expected = -(probs * probs.log()).sum(0).numpy()
    else:
        top = probs.sort(dim=0, descending=True).values
        expected = (top[0] - top[1]).numpy()
    with rasterio.open(result.uncertainty) as src, rasterio.open(result.prediction) as pred:
        assert (src.height, src.width, src.crs, src.transform) == (
            pred.height,
            pred.width,
            pred.crs,
            pred.transform,
        )
        assert src.dtypes[0] == "float32" and src.descriptions == (kind,)
        values, classes = src.read(1), pred.read(1)
    nodata = classes == pred.nodata
    assert nodata[:10, :15].all() and nodata.sum() == 150
    assert np.isnan(values[nodata]).all()
    np.testing.assert_allclose(values[~nodata], expected[~nodata], atol=1e-5)
    assert expected[~nodata].std() > 1e-3  # the check compares varied values, not a constant


def test_uncertainty_is_refused_when_unknown_or_for_regression(tmp_path: Path) -> None:
    _scene(tmp_path / "scene.tif")
    conv = torch.nn.Conv2d(2, 1, 1)
    with pytest.raises(ConfigError, match="entropy, margin"):
        predict_scene_to_geotiff(conv, tmp_path / "scene.tif", tmp_path / "p.tif", uncertainty="variance")
    with pytest.raises(ConfigError, match="only applies to segmentation"):
        predict_scene_to_geotiff(
            conv, tmp_path / "scene.tif", tmp_path / "p.tif", task="regression", uncertainty="entropy"
        )


def test_predict_scene_command_writes_the_entropy_beside_the_output(tmp_path: Path) -> None:
    import yaml

    from geoft.cli import main
    from geoft.runs.restore import build_task

    _scene(tmp_path / "scene.tif", 48, 48)
    model_args = {"backbone": "prithvi_eo_tiny", "backbone_img_size": 32, "backbone_depth": 2,
                  "backbone_in_chans": 2, "decoder": "FCNDecoder", "num_classes": 3}  # fmt: skip
    section = {"class_path": "SemanticSegmentationTask",
               "init_args": {"model_factory": "EncoderDecoderFactory", "model_args": model_args,
                             "tiled_inference_parameters": PARAMS}}  # fmt: skip
    data = {"class_path": "GenericNonGeoSegmentationDataModule",
            "init_args": {"num_classes": 3, "means": [1500.0, 1500.0], "stds": [800.0, 800.0]}}  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": section, "data": data}))
    torch.manual_seed(0)
    torch.save({"state_dict": build_task(section).state_dict()}, tmp_path / "model.ckpt")
    args = ["predict-scene", "-c", str(tmp_path / "config.yaml"), "--ckpt_path", str(tmp_path / "model.ckpt"),
            "--input", str(tmp_path / "scene.tif"), "--output", str(tmp_path / "pred.tif"),
            "--probabilities", str(tmp_path / "p.tif"), "--uncertainty", "entropy", "--precision", "32-true"]  # fmt: skip
    assert main(args) == 0
    with rasterio.open(tmp_path / "p.tif") as src:
        probs = src.read().astype(np.float64)
    with rasterio.open(tmp_path / "pred_entropy.tif") as src:
        entropy = src.read(1)
    valid = ~np.isnan(entropy)
    assert valid.sum() == 48 * 48 - 150
    expected = -(probs * np.log(probs)).sum(0)
    np.testing.assert_allclose(entropy[valid], expected[valid], atol=1e-5)
