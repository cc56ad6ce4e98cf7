"""The further kinds of the reference's example configs (DOFA, LoRA, multimodal data), written here in
their shapes on tiny data, fit one step through ``geoft fit``; configs of other programs are one line."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from geoft.cli import main
from tests.config.conftest import _write as write_tif
from tests.config.test_carry_over import BANDS, segmentation_config


def _fit(config: dict, tmp_path: Path, capsys) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    code = main(["fit", "-c", str(path)])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def _small(config: dict) -> dict:
    config = copy.deepcopy(config)
    config["trainer"]["callbacks"] = [{"class_path": "RichProgressBar"}]
    config["model"]["init_args"].pop("tiled_inference_parameters")
    return config


def test_dofa_shaped_config_with_img_size_and_model_bands_fits(
    flat_split_dataset: Path, tmp_path: Path, capsys
) -> None:
    config = _small(segmentation_config(flat_split_dataset, tmp_path / "out"))
    config["model"]["init_args"]["model_args"] = {
        "decoder": "FCNDecoder",
        "backbone_pretrained": False,
        "backbone_img_size": 32,
        "backbone": "dofa_small_patch16_224",
        "backbone_depth": 1,
        "decoder_channels": 8,
        "backbone_model_bands": BANDS,
        "num_classes": 2,
        "head_dropout": 0.1,
        "head_channel_list": [8],
        "necks": [{"name": "SelectIndices", "indices": [-1]}, {"name": "ReshapeTokensToImage"}],
    }
    config["model"]["init_args"]["class_weights"] = [0.3, 0.7]
    _fit(config, tmp_path, capsys)
    config["model"]["init_args"]["model_args"]["backbone_img_size"] = 30
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["fit", "-c", str(path)]) == 2
    assert "img_size must be a multiple of 16, got 30" in capsys.readouterr().err


def test_lora_shaped_config_with_split_qkv_fits_and_trains_only_adapters(
    flat_split_dataset: Path, tmp_path: Path, capsys
) -> None:
    config = _small(segmentation_config(flat_split_dataset, tmp_path / "out"))
    config["model"]["init_args"]["model_args"]["peft_config"] = {
        "method": "LORA",
        "replace_qkv": "qkv",
        "peft_config_kwargs": {"target_modules": ["qkv.q_linear", "qkv.v_linear", "mlp.fc1", "mlp.fc2"]},
    }
    config["model"]["init_args"]["aux_heads"] = [
        {
            "name": "aux_head",
            "decoder": "FCNDecoder",
            "decoder_args": {"decoder_channels": 8, "decoder_in_index": -1, "decoder_num_convs": 1},
        }
    ]
    config["model"]["init_args"]["aux_loss"] = {"aux_head": 1.0}
    _fit(config, tmp_path, capsys)
    ckpt = next((tmp_path / "out").rglob("*.ckpt"))
    keys = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert any("lora_A" in k and "q_linear" in k for k in keys), sorted(keys)[:10]


def _write_two_modality_dataset(root: Path) -> Path:
    """S2 (6 bands) and S1 (2 bands) folders, one label folder, files paired by stem, split files."""
    rng = np.random.default_rng(0)
    stems = [f"chip{i}" for i in range(4)]
    for stem in stems:
        write_tif(root / "S2" / f"{stem}_S2Hand.tif", rng.random((6, 32, 32), dtype=np.float32))
        write_tif(root / "S1" / f"{stem}_S1Hand.tif", rng.random((2, 32, 32), dtype=np.float32))
        label = rng.integers(0, 2, (32, 32)).astype(np.int16)
        label[:2, :2] = -1
        write_tif(root / "labels" / f"{stem}_LabelHand.tif", label)
    (root / "train.txt").write_text("\n".join(stems[:2]) + "\n")
    (root / "val.txt").write_text("\n".join(stems[2:]) + "\n")
    return root


def test_multimodal_shaped_config_with_concatenated_bands_fits(tmp_path: Path, capsys) -> None:
    data = _write_two_modality_dataset(tmp_path / "data")
    config = _small(segmentation_config(data, tmp_path / "out"))
    roots = {"S2L2A": str(data / "S2"), "S1": str(data / "S1")}
    config["data"] = {
        "class_path": "terratorch.datamodules.GenericMultiModalDataModule",
        "init_args": {
            "task": "segmentation",
            "batch_size": 2,
            "num_workers": 0,
            "modalities": ["S2L2A", "S1"],
            "rgb_modality": "S2L2A",
            "rgb_indices": [2, 1, 0],
            "train_data_root": roots,
            "train_label_data_root": str(data / "labels"),
            "val_data_root": roots,
            "val_label_data_root": str(data / "labels"),
            "train_split": str(data / "train.txt"),
            "val_split": str(data / "val.txt"),
            "allow_substring_file_names": True,
            "image_grep": {"S2L2A": "*_S2Hand.tif", "S1": "*_S1Hand.tif"},
            "label_grep": "*_LabelHand.tif",
            "no_label_replace": -1,
            "no_data_replace": 0,
            "concat_bands": True,
            "means": {"S2L2A": [0.5] * 6, "S1": [0.5] * 2},
            "stds": {"S2L2A": [0.3] * 6, "S1": [0.3] * 2},
            "num_classes": 2,
            "train_transform": [{"class_path": "albumentations.D4"}, {"class_path": "ToTensorV2"}],
        },
    }
    config["model"]["init_args"]["model_args"]["backbone_bands"] = BANDS + ["VV", "VH"]
    config["model"]["init_args"]["loss"] = "dice"
    err = _fit(config, tmp_path, capsys)
    assert "ignoring data.init_args.rgb_modality" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "data:\n  type: eccc\n  crop_factor: 256\nmodel:\n  input_mu: mu.pt\n  n_blocks: 2\n",
            "is not a LightningCLI config: its model section has no class_path (it has input_mu, n_blocks...)",
        ),
        (
            "defaults:\n  trainer_args: {max_epochs: 1}\noptimization_space:\n  lr: {min: 0.1, max: 1}\n",
            "is a terratorch-iterate (hyperparameter search) config",
        ),
        (
            "model:\n  init_args:\n    a: [0, 1]\n    b: x: 1\n",
            "is not valid YAML: mapping values are not allowed here (line 4, column 9)",
        ),
        (
            "data:\n  class_path: terratorch.datamodules.mVHR10DataModule\n",
            "mVHR10DataModule has no geoft equivalent: an object-detection datamodule for GEO-Bench's "
            "m-NWPU-VHR-10 only",
        ),
        (
            "data:\n  class_path: terratorch.datamodules.era5.ERA5DataModule\n",
            "ERA5DataModule has no geoft equivalent: weather (ERA5) data: weather models are not in geoft",
        ),
        (
            "data:\n  class_path: GenericMultiModalDataModule\n  init_args:\n    modalities: [S2L2A]\n"
            "    data_with_sample_dim: true\n    train_data_root: {S2L2A: cubes}\n",
            "data.init_args.data_with_sample_dim: GenericMultiModalDataModule of geoft has no "
            "data_with_sample_dim: files holding many samples each",
        ),
    ],
)
def test_what_geoft_cannot_run_is_one_line_naming_it(
    text: str, expected: str, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert main(["fit", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    first = next(line for line in err.splitlines() if line.startswith("geoft: error:"))
    assert expected in first, err
    assert "Traceback" not in err and "usage:" not in err and len(err.splitlines()) <= 4, err


def test_resnet_feature_levels_out_of_range_are_named() -> None:
    from geoft.errors import ConfigError
    from geoft.models.factories.encoder_decoder import build_backbone

    with pytest.raises(
        ConfigError, match=r"out_indices \[1, 3, 5, 7\] out of range; a ResNet has feature levels 0-4"
    ):
        build_backbone(
            "ssl4eol_resnet18_landsat_oli_tirs_toa_moco", {"pretrained": False, "out_indices": [1, 3, 5, 7]}
        )
    built = build_backbone(
        "ssl4eol_resnet18_landsat_oli_tirs_toa_moco", {"pretrained": False, "out_indices": [1, 3]}
    )
    assert built.out_channels == [64, 256]  # levels 1 and 3, as the reference picks them


def test_multimodal_batch_transforms_are_refused(tmp_path: Path) -> None:
    from geoft.datamodules import GenericMultiModalDataModule
    from geoft.errors import ConfigError

    with pytest.raises(ConfigError, match="only albumentations items are supported"):
        GenericMultiModalDataModule(
            modalities=["S2L2A"],
            task="regression",
            train_data_root={"S2L2A": str(tmp_path)},
            train_transform=[{"class_path": "kornia.augmentation.RandomHorizontalFlip"}],
        )
