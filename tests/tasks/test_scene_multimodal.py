"""Tiled inference and scene prediction on modality dicts and on one file per date.

The streamed scene must equal in-memory tiled inference on the whole input (as the single-modal tests
check), for a late-fusion model (the model takes ``{modality: tiles}``), a ``concat_bands`` model and a
series of dates; the output lies on the first modality's grid (or ``grid``'s); bad inputs name files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.transform import from_origin

from geoft.errors import ConfigError, DataError
from geoft.io.scene import predict_scene_to_geotiff
from geoft.io.scene_config import modality_inputs, split_inputs
from geoft.io.scene_inputs import SceneInput
from geoft.models.factories.encoder_decoder import EncoderDecoderFactory
from geoft.tasks.tiled_inference import tiled_inference

PARAMS = {"crop": 32, "stride": 24, "batch_size": 4}
TINY = {"backbone": "prithvi_eo_tiny", "img_size": 32, "depth": 2}
NORM = {"S2": ([1500.0] * 3, [800.0] * 3), "S1": ([-12.0] * 2, [4.0] * 2)}


def write_tif(
    path: Path, data: np.ndarray, pixel: float = 10.0, origin: tuple[float, float] = (600_000, 5_000_000),
    crs: str | None = "EPSG:32631",
) -> Path:  # fmt: skip
    profile = {
        "driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0],
        "dtype": str(data.dtype), "transform": from_origin(*origin, pixel, pixel),
    }  # fmt: skip
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def s2_s1(tmp_path: Path, height: int = 70, width: int = 58, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s2 = rng.integers(200, 3000, size=(3, height, width)).astype(np.float32)
    s1 = rng.normal(-12, 4, size=(2, height, width)).astype(np.float32)
    write_tif(tmp_path / "s2.tif", s2)
    write_tif(tmp_path / "s1.tif", s1)
    return s2, s1


def normalised(image: np.ndarray, modality: str) -> torch.Tensor:
    means, stds = NORM[modality]
    x = torch.from_numpy(image)
    return (x - torch.tensor(means).view(-1, 1, 1)) / torch.tensor(stds).view(-1, 1, 1)


def inputs(tmp_path: Path) -> dict[str, SceneInput]:
    return {m: SceneInput([tmp_path / f"{m.lower()}.tif"], normalise=NORM[m]) for m in ("S2", "S1")}


def model(backbone_args: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    built = EncoderDecoderFactory().build_model(
        task="segmentation", decoder="FCNDecoder", num_classes=3, **backbone_args
    )
    return built.eval()


def late_fusion() -> torch.nn.Module:
    encoders = {"S2": {**TINY, "in_chans": 3}, "S1": {**TINY, "in_chans": 2}}
    return model(
        {"backbone": "late_fusion", "backbone_encoders": encoders, "backbone_merge_method": "concat"}
    )


def probabilities(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_tiled_inference_cuts_every_modality_alike() -> None:
    image = {"S2": torch.randn(2, 3, 45, 37), "S1": torch.randn(2, 2, 45, 37)}
    seen: list[dict[str, tuple[int, ...]]] = []

    def concat_identity(tiles: dict[str, torch.Tensor]) -> torch.Tensor:
        seen.append({m: tuple(t.shape) for m, t in tiles.items()})
        return torch.cat([tiles["S2"], tiles["S1"]], dim=1)

    out = tiled_inference(concat_identity, image, PARAMS)
    assert torch.allclose(out, torch.cat([image["S2"], image["S1"]], dim=1), atol=1e-5)
    assert seen and all(s["S2"][-2:] == s["S1"][-2:] == (32, 32) for s in seen)
    with pytest.raises(ValueError, match="one grid"):
        tiled_inference(concat_identity, {"S2": image["S2"], "S1": image["S1"][..., :30]}, PARAMS)


def test_tiled_inference_on_a_series_of_dates() -> None:
    series = torch.randn(1, 2, 3, 40, 40)  # [B, C, T, H, W]
    out = tiled_inference(lambda t: t[:, :, 2] - t[:, :, 0], series, PARAMS)
    assert torch.allclose(out, series[:, :, 2] - series[:, :, 0], atol=1e-5)


@pytest.mark.parametrize(("max_width", "block_size"), [(4096, 512), (40, 16)], ids=["one-panel", "panels"])
def test_late_fusion_scene_equals_tiled_inference_on_the_dict(
    tmp_path: Path, max_width: int, block_size: int
) -> None:
    s2, s1 = s2_s1(tmp_path)
    net = late_fusion()
    result = predict_scene_to_geotiff(
        net, inputs(tmp_path), tmp_path / "pred.tif", params=PARAMS, probabilities_path=tmp_path / "p.tif",
        max_width=max_width, block_size=block_size,
    )  # fmt: skip
    x = {"S2": normalised(s2, "S2")[None], "S1": normalised(s1, "S1")[None]}
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(net, x, PARAMS)[0], dim=0).numpy()
    np.testing.assert_allclose(probabilities(tmp_path / "p.tif"), expected, atol=1e-5)
    with rasterio.open(result.prediction) as pred, rasterio.open(tmp_path / "s2.tif") as src:
        assert pred.transform == src.transform and pred.shape == src.shape
        assert np.array_equal(pred.read(1), expected.argmax(0))


def test_concat_bands_scene_equals_tiled_inference_on_the_bands(tmp_path: Path) -> None:
    s2, s1 = s2_s1(tmp_path)
    net = model(
        {"backbone": "prithvi_eo_tiny", "backbone_img_size": 32, "backbone_depth": 2, "backbone_in_chans": 5}
    )
    predict_scene_to_geotiff(
        net, inputs(tmp_path), tmp_path / "pred.tif", params=PARAMS, as_dict=False,
        probabilities_path=tmp_path / "p.tif", block_size=16,
    )  # fmt: skip
    x = torch.cat([normalised(s2, "S2"), normalised(s1, "S1")])[None]
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(net, x, PARAMS)[0], dim=0).numpy()
    np.testing.assert_allclose(probabilities(tmp_path / "p.tif"), expected, atol=1e-5)


def test_one_file_per_date_is_a_series(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dates = [rng.normal(size=(2, 50, 44)).astype(np.float32) for _ in range(3)]
    paths = [write_tif(tmp_path / f"date{i}.tif", d) for i, d in enumerate(dates)]
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 2, 5, padding=2)

    def change(tiles: torch.Tensor) -> torch.Tensor:  # [n, C, T, h, w]: last date against the first
        return conv(tiles[:, :, -1] - tiles[:, :, 0])

    predict_scene_to_geotiff(
        change, paths, tmp_path / "pred.tif", params=PARAMS, probabilities_path=tmp_path / "p.tif"
    )
    series = torch.from_numpy(np.stack(dates, axis=1))[None]
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(change, series, PARAMS)[0], dim=0).numpy()
    np.testing.assert_allclose(probabilities(tmp_path / "p.tif"), expected, atol=1e-5)


def test_a_coarser_modality_is_resampled_onto_the_grid(tmp_path: Path) -> None:
    s2, _ = s2_s1(tmp_path, 64, 48)
    coarse = np.random.default_rng(2).normal(-12, 4, size=(2, 32, 24)).astype(np.float32)
    write_tif(tmp_path / "s1.tif", coarse, pixel=20.0)
    spec = inputs(tmp_path)
    spec["S1"] = SceneInput([tmp_path / "s1.tif"], normalise=NORM["S1"], resampling="nearest")
    net = late_fusion()
    predict_scene_to_geotiff(
        net, spec, tmp_path / "pred.tif", params=PARAMS, probabilities_path=tmp_path / "p.tif"
    )
    s1_on_grid = np.repeat(np.repeat(coarse, 2, axis=1), 2, axis=2)  # nearest onto the 10 m grid
    x = {"S2": normalised(s2, "S2")[None], "S1": normalised(s1_on_grid, "S1")[None]}
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(net, x, PARAMS)[0], dim=0).numpy()
    np.testing.assert_allclose(probabilities(tmp_path / "p.tif"), expected, atol=1e-5)
    # the S1 grid on request: the output follows it
    result = predict_scene_to_geotiff(net, spec, tmp_path / "pred_s1.tif", params=PARAMS, grid="S1")
    with rasterio.open(result.prediction) as pred:
        assert pred.shape == (32, 24) and pred.transform.a == 20.0


def test_inputs_off_the_grid_are_errors_naming_both_files(tmp_path: Path) -> None:
    s2_s1(tmp_path)
    net = late_fusion()
    far = np.zeros((2, 70, 58), dtype=np.float32)
    spec = inputs(tmp_path)
    spec["S1"] = SceneInput([write_tif(tmp_path / "far.tif", far, origin=(700_000, 5_000_000))])
    with pytest.raises(DataError, match=r"far\.tif does not overlap .*s2\.tif"):
        predict_scene_to_geotiff(net, spec, tmp_path / "o.tif", params=PARAMS)
    spec["S1"] = SceneInput([write_tif(tmp_path / "nocrs.tif", far[:, :20], crs=None)])
    with pytest.raises(DataError, match=r"nocrs\.tif and .*s2\.tif .*no CRS"):
        predict_scene_to_geotiff(net, spec, tmp_path / "o.tif", params=PARAMS)
    spec["S1"] = SceneInput([tmp_path / "s1.tif"], normalise=([0.0], [1.0]))
    with pytest.raises(ConfigError, match=r"2 input bands of S1 \(.*s1\.tif\)"):
        predict_scene_to_geotiff(net, spec, tmp_path / "o.tif", params=PARAMS)
    dates = [tmp_path / "s1.tif", tmp_path / "s2.tif"]
    with pytest.raises(DataError, match=r"s2\.tif has 3 bands but .*s1\.tif .* has 2"):
        predict_scene_to_geotiff(net, {"S1": SceneInput(dates)}, tmp_path / "o.tif", params=PARAMS)
    with pytest.raises(ConfigError, match="grid 'S3'"):
        predict_scene_to_geotiff(net, inputs(tmp_path), tmp_path / "o.tif", params=PARAMS, grid="S3")
    with pytest.raises(DataError, match="missing.tif does not exist"):
        predict_scene_to_geotiff(net, {"S2": SceneInput([tmp_path / "missing.tif"])}, tmp_path / "o.tif")


DATA = {
    "modalities": ["S2", "S1"],
    "dataset_bands": {"S2": ["B2", "B3", "B4", "B8"], "S1": ["VV", "VH"]},
    "output_bands": {"S2": ["B2", "B3", "B4"], "S1": ["VV", "VH"]},
    "means": {"S2": NORM["S2"][0], "S1": NORM["S1"][0]},
    "stds": {"S2": NORM["S2"][1], "S1": NORM["S1"][1]},
    "constant_scale": {"S2": 2.0},
}


def test_config_inputs_check_bands_and_name_modalities(tmp_path: Path) -> None:
    s2, _ = s2_s1(tmp_path)
    with pytest.raises(DataError, match=r"s2\.tif \('S2'\) has 3 bands but dataset_bands\['S2'\] lists 4"):
        modality_inputs(DATA, [f"S2={tmp_path / 's2.tif'}", f"S1={tmp_path / 's1.tif'}"], {})
    with pytest.raises(ConfigError, match=r"no --input for modalities \['S1'\]"):
        split_inputs(["S2=a.tif"], ["S2", "S1"])
    with pytest.raises(ConfigError, match="MODALITY=FILE"):
        split_inputs(["a.tif"], ["S2", "S1"])
    assert split_inputs(["S1=b.tif", "S2=a.tif", "S2=c.tif"], ["S2", "S1"]) == {
        "S2": ["a.tif", "c.tif"],
        "S1": ["b.tif"],
    }
    write_tif(tmp_path / "s2x4.tif", np.concatenate([s2, s2[:1]]))
    found = modality_inputs(DATA, [f"S2={tmp_path / 's2x4.tif'}", f"S1={tmp_path / 's1.tif'}"], {})
    assert found.inputs["S2"].bands == [1, 2, 3] and found.inputs["S1"].bands == [1, 2]
    assert found.inputs["S2"].constant_scale == 2.0 and found.as_dict and found.no_data_replace == 0.0
    stored = {"GenericMultiModalDataModule": {"means": DATA["means"], "stds": DATA["stds"]}}
    no_stats = {k: v for k, v in DATA.items() if k not in ("means", "stds")}
    from_ckpt = modality_inputs(
        no_stats, [f"S2={tmp_path / 's2x4.tif'}", f"S1={tmp_path / 's1.tif'}"], stored
    )
    assert from_ckpt.inputs["S1"].normalise == NORM["S1"]


def test_predict_scene_command_with_one_file_per_modality(tmp_path: Path) -> None:
    """A concat_bands config: S2's output bands, then S1's, each normalised with its own statistics."""
    from geoft.cli import main
    from geoft.runs.restore import build_task

    s2, s1 = s2_s1(tmp_path)
    write_tif(tmp_path / "s2x4.tif", np.concatenate([s2, s2[:1]]) / 2)  # constant_scale 2 undoes the / 2
    model_args = {"backbone": "prithvi_eo_tiny", "backbone_img_size": 32, "backbone_depth": 2,
                  "backbone_in_chans": 5, "decoder": "FCNDecoder", "num_classes": 3}  # fmt: skip
    section = {"class_path": "SemanticSegmentationTask",
               "init_args": {"model_factory": "EncoderDecoderFactory", "model_args": model_args,
                             "tiled_inference_parameters": PARAMS}}  # fmt: skip
    data = {**DATA, "concat_bands": True}
    config = {"model": section, "data": {"class_path": "GenericMultiModalDataModule", "init_args": data}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(0)
    task = build_task(section).eval()
    torch.save({"state_dict": task.state_dict()}, tmp_path / "model.ckpt")
    args = ["predict-scene", "-c", str(tmp_path / "config.yaml"), "--ckpt_path", str(tmp_path / "model.ckpt"),
            "--input", f"S2={tmp_path / 's2x4.tif'}", "--input", f"S1={tmp_path / 's1.tif'}",
            "--output", str(tmp_path / "pred.tif"), "--probabilities", str(tmp_path / "p.tif"),
            "--precision", "32-true"]  # fmt: skip
    assert main(args) == 0
    x = torch.cat([normalised(s2, "S2"), normalised(s1, "S1")])[None]
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(lambda t: task(t).output, x, PARAMS)[0], dim=0).numpy()
    np.testing.assert_allclose(probabilities(tmp_path / "p.tif"), expected, atol=1e-4)
    assert main([*args[:-6], "--input", f"S3={tmp_path / 's1.tif'}", *args[-6:]]) == 2  # unknown modality


def test_task_predict_step_tiles_a_modality_dict() -> None:
    from geoft.tasks import SemanticSegmentationTask

    encoders = {"S2": {**TINY, "in_chans": 3}, "S1": {**TINY, "in_chans": 2}}
    torch.manual_seed(0)
    task = SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={
            "backbone": "late_fusion",
            "backbone_encoders": encoders,
            "decoder": "FCNDecoder",
            "num_classes": 2,
        },
        tiled_inference_parameters=PARAMS,
    ).eval()
    x = {"S2": torch.randn(2, 3, 50, 40), "S1": torch.randn(2, 2, 50, 40)}
    with torch.no_grad():
        expected = tiled_inference(lambda t: task(t).output, x, PARAMS).argmax(1)
    assert torch.equal(task.predict_step({"image": x}, 0)["prediction"], expected)


def test_a_modality_covering_part_of_the_grid_is_nodata_elsewhere(tmp_path: Path) -> None:
    """S1 covers the left 30 columns only: beyond, it is filled (0 before normalising) and the output
    is still predicted from S2; where neither has data the output is nodata."""
    s2, s1 = s2_s1(tmp_path, 40, 50)
    s2[:, :4, 40:] = 0  # S2 nodata in the top right corner, which S1 does not cover either
    with rasterio.open(tmp_path / "s2.tif", "r+") as dst:
        dst.nodata = 0
        dst.write(s2)
    write_tif(tmp_path / "s1.tif", s1[:, :, :30])
    net = late_fusion()
    predict_scene_to_geotiff(
        net, inputs(tmp_path), tmp_path / "pred.tif", params=PARAMS, probabilities_path=tmp_path / "p.tif"
    )
    s1_filled = np.concatenate([s1[:, :, :30], np.zeros((2, 40, 20), np.float32)], axis=2)
    x = {"S2": normalised(s2, "S2")[None], "S1": normalised(s1_filled, "S1")[None]}
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(net, x, PARAMS)[0], dim=0).numpy()
    got = probabilities(tmp_path / "p.tif")
    corner = np.zeros((40, 50), dtype=bool)
    corner[:4, 40:] = True
    assert np.isnan(got[:, corner]).all()
    np.testing.assert_allclose(got[:, ~corner], expected[:, ~corner], atol=1e-5)
