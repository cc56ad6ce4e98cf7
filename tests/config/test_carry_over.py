"""TerraTorch-shaped configs (written here in the shapes of the reference's examples) run through ``geoft``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from geoft.cli import main
from geoft.errors import ConfigError

BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def segmentation_config(data: Path, out: Path) -> dict:
    """The shape of the reference's burn-scars / Sen1Floods11 examples, on tiny data and a tiny Prithvi."""
    return {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "strategy": "auto",
            "devices": 1,
            "num_nodes": 1,
            "precision": "32-true",
            "logger": {"class_path": "TensorBoardLogger", "init_args": {"save_dir": str(out), "name": "tb"}},
            "callbacks": [
                {"class_path": "RichProgressBar"},
                {"class_path": "LearningRateMonitor", "init_args": {"logging_interval": "epoch"}},
                {"class_path": "EarlyStopping", "init_args": {"monitor": "val/loss", "patience": 20}},
                {
                    "class_path": "StateDictAwareModelCheckpoint",
                    "init_args": {"filename": "{epoch}", "monitor": "val/loss", "dirpath": str(out / "ckpt")},
                },
            ],
            "max_epochs": 1,
            "limit_train_batches": 1,
            "limit_val_batches": 1,
            "log_every_n_steps": 1,
            "default_root_dir": str(out),
        },
        "data": {
            "class_path": "GenericNonGeoSegmentationDataModule",
            "init_args": {
                "batch_size": 2,
                "num_workers": 0,
                "constant_scale": 1.0,
                "dataset_bands": BANDS,
                "output_bands": BANDS,
                "rgb_indices": [2, 1, 0],
                "train_data_root": str(data / "data"),
                "val_data_root": str(data / "data"),
                "test_data_root": str(data / "data"),
                "train_split": str(data / "splits" / "train.txt"),
                "val_split": str(data / "splits" / "val.txt"),
                "test_split": str(data / "splits" / "test.txt"),
                "img_grep": "*_merged.tif",
                "label_grep": "*.mask.tif",
                "means": [0.5] * 6,
                "stds": [0.3] * 6,
                "num_classes": 2,
                "train_transform": [
                    {"class_path": "albumentations.D4"},
                    {
                        "class_path": "albumentations.Rotate",
                        "init_args": {"limit": 30, "border_mode": 0, "p": 0.5},
                    },
                    {"class_path": "albumentations.RandomCrop", "init_args": {"height": 32, "width": 32}},
                    {"class_path": "ToTensorV2"},
                ],
                "val_transform": [
                    {"class_path": "albumentations.CenterCrop", "init_args": {"height": 32, "width": 32}},
                    {"class_path": "ToTensorV2"},
                ],
                "no_data_replace": 0,
                "no_label_replace": -1,
            },
        },
        "model": {
            "class_path": "terratorch.tasks.SemanticSegmentationTask",
            "init_args": {
                "model_factory": "EncoderDecoderFactory",
                "model_args": {
                    "backbone": "prithvi_eo_tiny",
                    "backbone_pretrained": False,
                    "backbone_img_size": 32,
                    "backbone_depth": 2,
                    "backbone_bands": BANDS,
                    "necks": [
                        {"name": "SelectIndices", "indices": [0, 1]},
                        {"name": "ReshapeTokensToImage"},
                    ],
                    "decoder": "FCNDecoder",
                    "decoder_channels": 16,
                    "head_dropout": 0.1,
                    "num_classes": 2,
                },
                "loss": "ce",
                "ignore_index": -1,
                "freeze_backbone": False,
                "freeze_decoder": False,
                "tiled_inference_parameters": {
                    "h_crop": 32,
                    "h_stride": 24,
                    "w_crop": 32,
                    "w_stride": 24,
                    "delta": 4,
                    "blend_overlaps": True,
                    "average_patches": False,
                    "padding": "reflect",
                },
            },
        },
        "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 1.0e-4, "weight_decay": 0.1}},
        "lr_scheduler": {
            "class_path": "ReduceLROnPlateau",
            "init_args": {"monitor": "val/loss", "patience": 5},
        },
    }


def _write(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_reference_shaped_segmentation_config_fits_tests_and_predicts(
    flat_split_dataset: Path, tmp_path: Path, capsys
) -> None:
    config = _write(segmentation_config(flat_split_dataset, tmp_path / "out"), tmp_path / "c.yaml")
    assert main(["fit", "-c", str(config), "--run_name", "fit"]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "StateDictAwareModelCheckpoint" in err  # one notice says what it became
    ckpts = sorted((tmp_path / "out" / "ckpt").glob("*.ckpt"))
    assert ckpts, "the reference's checkpoint callback wrote no checkpoint"
    assert list((tmp_path / "out").rglob("events.out.tfevents*")), "TensorBoardLogger wrote nothing"
    assert main(["test", "-c", str(config), "--ckpt_path", str(ckpts[0]), "--run_name", "test"]) == 0
    out_dir = tmp_path / "pred"
    args = ["predict", "-c", str(config), "--ckpt_path", str(ckpts[0]), "--run_name", "pred"]
    args += [
        "--data.init_args.predict_data_root",
        str(flat_split_dataset / "data"),
        "--predict_output_dir",
        str(out_dir),
    ]
    assert main(args) == 0, capsys.readouterr().err
    assert list(out_dir.glob("*.tif"))


def _fit_error(config: dict, tmp_path: Path, capsys, *extra: str) -> str:
    path = _write(config, tmp_path / "bad.yaml")
    assert main(["fit", "-c", str(path), *extra]) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: c["model"]["init_args"].update(ignore_indx=-1),
            r"model\.init_args\.ignore_indx.*did you mean ignore_index",
        ),
        (lambda c: c["trainer"].update(max_epoch=1), r"trainer\.max_epoch.*did you mean max_epochs"),
        (
            lambda c: c["trainer"]["callbacks"].append({"class_path": "EarlyStoping"}),
            r"trainer\.callbacks\[4\].*'EarlyStoping'.*did you mean EarlyStopping",
        ),
        (
            lambda c: c["trainer"].update(logger={"class_path": "WandbLogger"}),
            r"trainer\.logger.*WandbLogger.*pip install wandb",
        ),
        (
            lambda c: c["data"].update(class_path="terratorch.datamodules.Sen1Floods11NonGeoDataModule"),
            r"Sen1Floods11NonGeoDataModule has no geoft equivalent",
        ),
        (lambda c: c["optimizer"]["init_args"].update(lrr=1), r"optimizer\.init_args\.lrr.*did you mean lr"),
    ],
)
def test_a_class_or_key_that_cannot_be_built_is_one_short_message(
    edit, expected, flat_split_dataset: Path, tmp_path: Path, capsys
) -> None:
    config = segmentation_config(flat_split_dataset, tmp_path / "out")
    edit(config)
    err = _fit_error(config, tmp_path, capsys)
    assert re.search(expected, err, re.S), err
    assert "Namespace(" not in err and len(err.splitlines()) < 12, err


def test_typo_on_the_command_line_gets_did_you_mean(flat_split_dataset: Path, tmp_path: Path, capsys) -> None:
    err = _fit_error(
        segmentation_config(flat_split_dataset, tmp_path / "out"),
        tmp_path,
        capsys,
        "--trainer.max_epoch",
        "1",
    )
    assert "did you mean max_epochs" in err


def test_band_intervals_and_tiling_keys_translate() -> None:
    from geoft.config.compat import expand_band_intervals, translate
    from geoft.tasks.tiled_inference import TiledInferenceParameters

    assert expand_band_intervals([[1, 3], "NDVI", 7]) == [1, 2, 3, "NDVI", 7]
    with pytest.raises(ConfigError, match="interval"):
        expand_band_intervals([[3, 1]])
    notes: list[str] = []
    out = translate(
        {
            "data": {"init_args": {"dataset_bands": [[0, 2]], "output_bands": [1, 2]}},
            "model": {
                "init_args": {
                    "tiled_inference_parameters": {
                        "h_crop": 32,
                        "h_stride": 16,
                        "w_crop": 32,
                        "w_stride": 16,
                        "delta": 4,
                        "blend_overlaps": False,
                        "padding": "reflect",
                    }
                }
            },
        },
        notes.append,
    )
    assert out["data"]["init_args"]["dataset_bands"] == [0, 1, 2]
    params = TiledInferenceParameters.from_any(out["model"]["init_args"]["tiled_inference_parameters"])
    assert (
        params.blend == "none"
        and params.halo == (4, 4)
        and params.padding == "reflect"
        and params.crop == (32, 32)
    )
    assert any("delta" in n for n in notes)


def test_prithvi_model_factory_means_encoder_decoder_with_reshape_neck(caplog) -> None:
    from geoft.registry import MODEL_FACTORY_REGISTRY

    args = dict(
        task="segmentation",
        backbone="prithvi_eo_tiny",
        decoder="FCNDecoder",
        bands=BANDS,
        num_classes=2,
        pretrained=False,
        backbone_img_size=32,
        backbone_depth=2,
        decoder_channels=8,
    )
    torch.manual_seed(0)
    old = MODEL_FACTORY_REGISTRY.build("PrithviModelFactory").build_model(**args)
    assert "deprecated" in caplog.text
    torch.manual_seed(0)
    new = MODEL_FACTORY_REGISTRY.build("EncoderDecoderFactory").build_model(
        "segmentation",
        "prithvi_eo_tiny",
        "FCNDecoder",
        num_classes=2,
        necks=[{"name": "ReshapeTokensToImage"}],
        backbone_bands=BANDS,
        backbone_pretrained=False,
        backbone_num_frames=1,
        backbone_img_size=32,
        backbone_depth=2,
        decoder_channels=8,
    )
    x = torch.randn(1, 6, 32, 32)
    assert torch.equal(old.eval()(x).output, new.eval()(x).output)
    unet = MODEL_FACTORY_REGISTRY.build("GenericUnetModelFactory").build_model(
        task="segmentation", in_channels=6, num_classes=3
    )
    assert unet.eval()(x).output.shape == (1, 3, 32, 32)


def test_custom_modules_path_registers_a_backbone(tmp_path: Path) -> None:
    from geoft.config.compat import translate
    from geoft.registry import BACKBONE_REGISTRY

    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "carry_over_backbone.py").write_text(
        "from torch import nn\nfrom geoft.registry import BACKBONE_REGISTRY\n\n"
        "@BACKBONE_REGISTRY.register()\nclass CarryOverTinyConv(nn.Module):\n"
        "    out_channels = [4]\n    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(6, 4, 3, padding=1)\n"
        "    def forward(self, x):\n        return [self.conv(x)]\n"
    )
    notes: list[str] = []
    out = translate({"custom_modules_path": str(tmp_path / "mods"), "model": {}}, notes.append)
    assert "custom_modules_path" not in out and "CarryOverTinyConv" in BACKBONE_REGISTRY
    with pytest.raises(ConfigError, match="custom_modules_path"):
        translate({"custom_modules_path": str(tmp_path / "nowhere")}, notes.append)


def test_reference_spellings_of_model_args_and_band_placeholders() -> None:
    from geoft.config.compat import translate

    notes: list[str] = []
    out = translate(
        {
            "data": {
                "class_path": "GenericNonGeoPixelwiseRegressionDataModule",
                "init_args": {"dataset_bands": [-1, "RED", -1, -1]},
            },
            "model": {
                "class_path": "PixelwiseRegressionTask",
                "init_args": {
                    "model_factory": "EncoderDecoderFactory",
                    "model_args": {"backbone_in_channels": 6, "backbone_pretrain_img_size": 224},
                },
            },
        },
        notes.append,
    )
    assert out["data"]["init_args"]["dataset_bands"] == [-1, "RED", "UNUSED_-1_2", "UNUSED_-1_3"]
    assert out["model"]["init_args"]["model_args"] == {"backbone_in_chans": 6}
    smp = translate(
        {
            "model_factory": "SMPModelFactory",
            "model_args": {"bands": ["RED", "GREEN"], "backbone": "resnet18"},
        },
        notes.append,
        top_level=False,
    )
    assert smp["model_args"] == {"backbone": "resnet18", "in_channels": 2}


def test_old_metric_names_and_unused_class_weights() -> None:
    from geoft.config.compat import translate

    notes: list[str] = []
    out = translate(
        {
            "trainer": {
                "callbacks": [
                    {
                        "class_path": "ModelCheckpoint",
                        "init_args": {"monitor": "val/Multiclass_Jaccard_Index"},
                    }
                ]
            },
            "model": {"init_args": {"model_args": {}, "loss": "dice", "class_weights": [1.0, 2.0]}},
        },
        notes.append,
    )
    assert out["trainer"]["callbacks"][0]["init_args"]["monitor"] == "val/mIoU"
    assert "class_weights" not in out["model"]["init_args"] and len(notes) == 2
    kept = translate({"model_args": {}, "loss": "ce", "class_weights": [1.0]}, notes.append, top_level=False)
    assert kept["class_weights"] == [1.0]


def test_appending_to_a_trainer_list_on_the_command_line_is_not_a_typo() -> None:
    from geoft.config.checks import check_dotted_override
    from geoft.errors import ConfigError

    check_dotted_override("--trainer.callbacks+=my_module.MyCallback")  # jsonargparse's list append
    with pytest.raises(ConfigError, match="did you mean"):
        check_dotted_override("--trainer.callbackz+=my_module.MyCallback")


def test_a_reference_mlp_decoder_is_named_as_another_model() -> None:
    from geoft.config.compat import translate

    def config(class_path: str) -> dict:
        return {"model": {"class_path": class_path, "init_args": {"model_args": {"decoder": "MLPDecoder"}}}}

    notes: list[str] = []
    translate(config("terratorch.tasks.SemanticSegmentationTask"), notes.append)
    assert any("MLPDecoder" in n and "not the reference's" in n for n in notes), notes
    own: list[str] = []
    translate(config("SemanticSegmentationTask"), own.append)
    assert not any("MLPDecoder" in n for n in own)
