"""Scene prediction skips tiles that hold only nodata, and the valid pixels stay what they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from geoft.io.scene import predict_scene_to_geotiff
from geoft.tasks.tiled_inference import count_tiles, tiled_inference

PARAMS = {"crop": 48, "stride": 40, "batch_size": 1}  # one tile per batch: batching cannot change a tile


def _scene(path: Path, valid: np.ndarray, bands: int = 2) -> np.ndarray:
    rng = np.random.default_rng(1)
    data = rng.integers(1, 3000, size=(bands, *valid.shape), dtype=np.uint16)
    data[:, ~valid] = 0
    profile = {
        "driver": "GTiff", "height": valid.shape[0], "width": valid.shape[1], "count": bands, "dtype": "uint16",
        "nodata": 0, "crs": "EPSG:32631", "transform": from_origin(600000, 5000020, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return data


def _model() -> tuple[torch.nn.Module, list[int]]:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 5, padding=2)
    calls = [0]

    def model(tiles: torch.Tensor) -> torch.Tensor:
        calls[0] += tiles.shape[0]
        return conv(tiles)

    return model, calls  # type: ignore[return-value]


@pytest.mark.parametrize("block_size", [512, 32], ids=["one-strip", "strips"])
def test_tiles_of_a_nodata_border_are_skipped_and_valid_pixels_are_unchanged(
    tmp_path: Path, block_size: int
) -> None:
    valid = np.zeros((300, 260), dtype=bool)
    valid[90:, 70:230] = True  # a scene footprint with a nodata border (top and both sides: ~50 % nodata)
    data = _scene(tmp_path / "scene.tif", valid)
    model, calls = _model()
    result = predict_scene_to_geotiff(
        model, tmp_path / "scene.tif", tmp_path / "pred.tif", params=PARAMS, no_data_replace=0.0,
        probabilities_path=tmp_path / "probs.tif", block_size=block_size,
    )  # fmt: skip
    full = count_tiles(300, 260, PARAMS)
    assert result.tiles == calls[0] < 0.75 * full
    image = torch.from_numpy(data.astype(np.float32))  # nodata pixels are 0 = no_data_replace
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(model, image[None], PARAMS)[0], dim=0).numpy()
    with rasterio.open(result.probabilities) as probs, rasterio.open(result.prediction) as pred:
        got = probs.read()
        classes = pred.read(1)
        pred_nodata = pred.nodata
    np.testing.assert_allclose(got[:, valid], expected[:, valid], atol=1e-5)
    assert np.isnan(got[:, ~valid]).all()
    assert (classes[~valid] == pred_nodata).all()
    assert (classes[valid] == expected.argmax(0)[valid]).all()


def test_a_scene_of_nodata_only_runs_one_tile_and_is_written_as_nodata(tmp_path: Path) -> None:
    valid = np.zeros((120, 100), dtype=bool)
    _scene(tmp_path / "empty.tif", valid)
    model, calls = _model()
    result = predict_scene_to_geotiff(model, tmp_path / "empty.tif", tmp_path / "pred.tif", params=PARAMS)
    assert calls[0] == result.tiles == 1  # one tile only, to learn the number of classes
    with rasterio.open(result.prediction) as pred:
        assert (pred.read(1) == pred.nodata).all()
        assert pred.count == 1 and pred.colorinterp is not None


def test_a_scene_without_nodata_runs_every_tile(tmp_path: Path) -> None:
    _scene(tmp_path / "full.tif", np.ones((100, 90), dtype=bool))
    model, calls = _model()
    result = predict_scene_to_geotiff(model, tmp_path / "full.tif", tmp_path / "pred.tif", params=PARAMS)
    assert result.tiles == calls[0] == count_tiles(100, 90, PARAMS)
