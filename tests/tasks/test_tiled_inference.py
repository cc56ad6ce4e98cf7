"""Tiled inference: seamless blending, any size, multi-temporal, bounded-memory scene prediction."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from geoft.errors import ConfigError, DataError
from geoft.io.scene import predict_scene_to_geotiff
from geoft.tasks.tiled_inference import TiledInferenceParameters, count_tiles, tile_starts, tiled_inference


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


@pytest.mark.parametrize("blend", ["cosine", "linear", "none"])
@pytest.mark.parametrize(
    "shape",
    [(2, 3, 37, 53), (1, 2, 4, 61, 45), (1, 1, 5, 3), (1, 3, 96, 96), (3, 1, 1, 70)],
    ids=["odd", "multitemporal", "smaller-than-tile", "exact-multiple", "one-row"],
)
def test_identity_model_reproduces_input_exactly(shape: tuple[int, ...], blend: str) -> None:
    x = torch.randn(shape)
    y = tiled_inference(identity, x, {"crop": 32, "stride": 24, "batch_size": 5, "blend": blend})
    assert y.shape == x.shape
    assert torch.equal(y, x)


def test_replicate_padding_and_rectangular_tiles_are_exact() -> None:
    x = torch.randn(1, 2, 50, 41)
    params = TiledInferenceParameters(crop=(16, 24), stride=(9, 20), padding="replicate", halo=(3, 0))
    assert torch.equal(tiled_inference(identity, x, params), x)


def test_blending_weights_a_non_identity_model_smoothly() -> None:
    # A model whose output depends on the tile position: without blending, seams are steps.
    def tile_id(x: torch.Tensor) -> torch.Tensor:
        ids = torch.arange(x.shape[0], dtype=x.dtype).view(-1, 1, 1, 1)
        return ids.expand(-1, 1, *x.shape[-2:]).clone()

    image = torch.zeros(1, 1, 64, 200)
    params = {"crop": 32, "stride": 16, "batch_size": 64}
    cosine = tiled_inference(tile_id, image, {**params, "blend": "cosine"})[0, 0, 32]
    flat = tiled_inference(tile_id, image, {**params, "blend": "none"})[0, 0, 32]
    # Cosine windows give a smooth ramp: the biggest jump between neighbours is smaller than with flat windows.
    assert cosine.diff().abs().max() < flat.diff().abs().max()


def test_output_channels_and_dtype_come_from_the_model() -> None:
    conv = torch.nn.Conv2d(3, 5, 1)
    x = torch.randn(2, 3, 45, 33)
    with torch.no_grad():
        expected = conv(x)
    y = tiled_inference(conv, x, {"crop": 16, "stride": 12})
    assert y.shape == (2, 5, 45, 33)
    # A pixel-wise model gives the same answer tiled or not (up to float rounding of the blend).
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_sample_kwargs_follow_their_tiles() -> None:
    def add_offset(x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        return x + offset.view(-1, 1, 1, 1)

    x = torch.zeros(3, 1, 40, 40)
    offsets = torch.tensor([1.0, 2.0, 3.0])
    y = tiled_inference(add_offset, x, {"crop": 16, "batch_size": 7}, sample_kwargs={"offset": offsets})
    for b in range(3):
        assert torch.allclose(y[b], torch.full_like(y[b], offsets[b].item()))


def test_model_output_objects_are_unwrapped() -> None:
    from geoft.models.model import ModelOutput

    x = torch.randn(1, 2, 20, 20)
    y = tiled_inference(lambda t: ModelOutput(output=t * 2), x, {"crop": 8})
    assert torch.allclose(y, 2 * x)


def test_reference_parameter_names_are_accepted() -> None:
    p = TiledInferenceParameters.from_any(
        {"h_crop": 64, "w_crop": 32, "h_stride": 48, "w_stride": 16, "average_patches": True}
    )
    assert p.crop == (64, 32) and p.stride == (48, 16) and p.blend == "none"


@pytest.mark.parametrize(
    "bad",
    [
        {"crop": 16, "stride": 32},
        {"crop": 0},
        {"blend": "gauss"},
        {"padding": "zeros"},
        {"cropp": 3},
        {"batch_size": 0},
    ],
)
def test_bad_parameters_raise_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        TiledInferenceParameters.from_any(bad)


def test_model_changing_spatial_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="spatial size"):
        tiled_inference(lambda t: t[..., ::2, ::2], torch.randn(1, 1, 40, 40), {"crop": 16})


def test_tile_grid_covers_the_padded_image() -> None:
    starts = tile_starts(100, 32, 24, 4)
    assert starts[0] == -4 and starts[-1] + 32 == 104
    assert all(b - a <= 24 for a, b in zip(starts, starts[1:]))
    assert count_tiles(100, 100, {"crop": 32, "stride": 24, "halo": 4}) == len(starts) ** 2


# -- GeoTIFF scenes ---------------------------------------------------------------------------------


def _write_scene(path: Path, size: int, bands: int = 2, nodata_box: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    profile = {
        "driver": "GTiff",
        "height": size,
        "width": size,
        "count": bands,
        "dtype": "uint16",
        "nodata": 0,
        "crs": "EPSG:32631",
        "transform": from_origin(600000, 5000020, 10, 10),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, 512):
            h = min(512, size - row)
            block = rng.integers(1, 3000, size=(bands, h, size), dtype=np.uint16)
            dst.write(block, window=rasterio.windows.Window(0, row, size, h))
        if nodata_box:
            dst.write(np.zeros((bands, 7, 9), dtype=np.uint16), window=rasterio.windows.Window(3, 5, 9, 7))
    with rasterio.open(path) as src:
        return src.read() if size <= 1024 else np.empty(0)


def test_scene_regression_identity_is_exact_and_georeferenced(tmp_path: Path) -> None:
    src = tmp_path / "scene.tif"
    data = _write_scene(src, 300, nodata_box=True)
    out = predict_scene_to_geotiff(
        lambda t: t[:, :1],
        src,
        tmp_path / "pred.tif",
        task="regression",
        params={"crop": 64, "stride": 40},
        block_size=128,
        no_data_replace=None,
    )
    with rasterio.open(src) as s, rasterio.open(out.prediction) as p:
        assert p.crs == s.crs and p.transform == s.transform and (p.width, p.height) == (s.width, s.height)
        assert p.dtypes[0] == "float32"
        pred = p.read(1)
    nodata = data[0] == 0
    assert nodata[5:12, 3:12].all()
    assert np.isnan(pred[nodata]).all()
    # Blocks of 128 px with 64 px tiles: seams between blocks would break exactness.
    assert np.array_equal(pred[~nodata], data[0][~nodata].astype(np.float32))


@pytest.mark.parametrize(
    ("max_width", "block_size"), [(4096, 512), (96, 32)], ids=["one-panel", "panels-and-strips"]
)
def test_scene_equals_tiling_the_whole_image_and_runs_each_tile_once(
    tmp_path: Path, max_width: int, block_size: int
) -> None:
    src = tmp_path / "scene.tif"
    _write_scene(src, 300, bands=2)
    with rasterio.open(src) as s:
        data = s.read(window=((0, 300), (0, 230)))  # a rectangular scene: crop the square one
        profile = s.profile | {"width": 230}
    rect = tmp_path / "rect.tif"
    with rasterio.open(rect, "w", **profile) as dst:
        dst.write(data)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 5, padding=2)  # context-dependent: a different tile grid changes it
    calls = 0

    def model(tiles: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += tiles.shape[0]
        return conv(tiles)

    params = {"crop": 48, "stride": 40, "batch_size": 5}
    norm = ([1500.0, 1500.0], [800.0, 800.0])
    result = predict_scene_to_geotiff(
        model, rect, tmp_path / "p.tif", params=params, normalise=norm,
        probabilities_path=tmp_path / "probs.tif", max_width=max_width, block_size=block_size,
    )  # fmt: skip
    image = (torch.from_numpy(data.astype(np.float32)) - 1500.0) / 800.0
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(conv, image[None], params)[0], dim=0).numpy()
    with rasterio.open(result.probabilities) as pr:
        np.testing.assert_allclose(pr.read(), expected, atol=1e-5)
    assert result.tiles == calls
    if max_width >= 230:
        assert calls == count_tiles(300, 230, params)  # every tile of the global grid, once
    else:  # panels of 96 px: only tile columns straddling the 2 panel borders (<= 2 each) run twice
        per_column = len(tile_starts(300, 48, 40, 4))
        assert count_tiles(300, 230, params) < calls <= count_tiles(300, 230, params) + 2 * 2 * per_column


def test_scene_segmentation_writes_classes_colour_table_and_probabilities(tmp_path: Path) -> None:
    src = tmp_path / "scene.tif"
    data = _write_scene(src, 200, bands=3)
    conv = torch.nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
    result = predict_scene_to_geotiff(
        conv,
        src,
        tmp_path / "classes.tif",
        params={"crop": 32, "batch_size": 8},
        normalise=([1000.0, 1000.0, 1000.0], [500.0, 500.0, 500.0]),
        probabilities_path=tmp_path / "probs.tif",
        class_names=["water", "field", "forest"],
        class_colors=["#0000ff", "#ffff00", (0, 128, 0)],
    )
    with rasterio.open(result.prediction) as p, rasterio.open(result.probabilities) as pr:
        classes = p.read(1)
        assert p.dtypes[0] == "uint8" and p.nodata == 255
        assert p.colormap(1)[0][:3] == (0, 0, 255) and p.colormap(1)[2][:3] == (0, 128, 0)
        assert p.tags(1)["CLASS_1"] == "field" and p.descriptions[0] == "class"
        assert pr.count == 3 and pr.descriptions[0] == "p(water)"
        probs = pr.read()
    np.testing.assert_array_equal(classes, data.argmax(0))
    np.testing.assert_allclose(probs.sum(0), 1.0, rtol=1e-5)


def test_scene_errors_are_actionable(tmp_path: Path) -> None:
    src = tmp_path / "scene.tif"
    _write_scene(src, 32)
    with pytest.raises(DataError, match="does not exist"):
        predict_scene_to_geotiff(identity, tmp_path / "missing.tif", tmp_path / "o.tif")
    with pytest.raises(ConfigError, match="bands"):
        predict_scene_to_geotiff(identity, src, tmp_path / "o.tif", bands=[3])
    with pytest.raises(ConfigError, match="means"):
        predict_scene_to_geotiff(identity, src, tmp_path / "o.tif", normalise=([0.0], [1.0]))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _peak_rss_delta(fn: Callable[[], object]) -> int:
    """Peak resident memory above the starting level while ``fn`` runs (sampled every 2 ms)."""
    baseline = peak = _rss_bytes()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.002)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        fn()
    finally:
        stop.set()
        thread.join()
    return peak - baseline


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to measure memory")
def test_scene_memory_does_not_grow_with_scene_size(tmp_path: Path) -> None:
    warm, small, large = tmp_path / "warm.tif", tmp_path / "small.tif", tmp_path / "large.tif"
    _write_scene(warm, 256)
    _write_scene(small, 1024)
    _write_scene(large, 4096)  # 4096^2 x 2 bands: 128 MiB as float32

    def run(src: Path) -> None:
        predict_scene_to_geotiff(
            lambda t: t[:, :1],  # cheap: the I/O and blending are what we measure
            src,
            src.with_name(f"{src.stem}_pred.tif"),
            task="regression",
            params={"crop": 256, "stride": 256, "halo": 0, "batch_size": 4},
            block_size=512,
            max_width=1024,  # wider scenes are cut into panels of this width
            gdal_cache_mb=16,
        )

    run(warm)  # first-call allocations (thread pools, GDAL drivers) are not what we measure
    small_peak = _peak_rss_delta(lambda: run(small))
    large_peak = _peak_rss_delta(lambda: run(large))
    with rasterio.open(tmp_path / "large_pred.tif") as p, rasterio.open(large) as s:
        assert p.transform == s.transform and p.crs == s.crs and p.shape == s.shape
        assert np.array_equal(
            p.read(1, window=((4000, 4096), (0, 96))), s.read(1, window=((4000, 4096), (0, 96)))
        )
    # 16x the pixels; holding the scene as float32 would add 128 MiB, the output 64 MiB.
    assert large_peak < small_peak + 32 * 2**20, (small_peak / 2**20, large_peak / 2**20)
    assert large_peak < 96 * 2**20, large_peak / 2**20


def test_scene_precision_names_map_to_autocast() -> None:
    from geoft.io.scene import inference_autocast_dtype

    cpu = torch.device("cpu")
    assert inference_autocast_dtype("32-true", cpu) is None
    assert inference_autocast_dtype("bf16-mixed", cpu) is torch.bfloat16
    assert inference_autocast_dtype("16-mixed", torch.device("cuda")) is torch.float16
    from geoft.hardware import default_precision

    assert inference_autocast_dtype(None, cpu) == inference_autocast_dtype(default_precision("cpu"), cpu)
    with pytest.raises(ConfigError, match="64-true"):
        inference_autocast_dtype("64-true", cpu)
