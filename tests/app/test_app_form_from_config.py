"""A loaded config fills the Model page's form and comes back unchanged; one edit changes only its keys."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from geoft.app.form_from_config import apply_form, fill_form
from geoft.task_kinds import TaskKind

CONFIGS = sorted(p for p in Path("configs").glob("*.yaml") if "sweep" not in p.name)

TERRATORCH_SEGMENTATION = {
    "seed_everything": 0,
    "trainer": {"accelerator": "auto", "max_epochs": 50, "precision": "bf16-mixed"},
    "data": {
        "class_path": "terratorch.datamodules.GenericNonGeoSegmentationDataModule",
        "init_args": {
            "batch_size": 8,
            "num_classes": 2,
            "train_data_root": "data/train",
            "no_data_replace": 0,
        },
    },
    "model": {
        "class_path": "terratorch.tasks.SemanticSegmentationTask",
        "init_args": {
            "model_factory": "EncoderDecoderFactory",
            "model_args": {
                "backbone": "prithvi_eo_v2_300",
                "backbone_pretrained": True,
                "backbone_bands": ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"],
                "necks": [
                    {"name": "SelectIndices", "indices": [5, 11, 17, 23]},
                    {"name": "ReshapeTokensToImage"},
                    {"name": "LearnedInterpolateToPyramidal"},
                ],
                "decoder": "UperNetDecoder",
                "decoder_channels": 256,
                "head_dropout": 0.1,
                "num_classes": 2,
                "peft_config": {
                    "method": "LORA",
                    "replace_qkv": "qkv",
                    "peft_config_kwargs": {"r": 8, "lora_alpha": 16},
                },
            },
            "loss": "dice",
            "ignore_index": -1,
            "lr": 1.0e-4,
            "optimizer": "torch.optim.AdamW",
            "freeze_backbone": False,
            "freeze_decoder": False,
            "class_names": ["other", "water"],
        },
    },
}
TERRATORCH_CLASSIFICATION = {
    "trainer": {"max_epochs": 5},
    "data": {
        "class_path": "GenericNonGeoClassificationDataModule",
        "init_args": {"batch_size": 16, "num_classes": 10},
    },
    "model": {
        "class_path": "terratorch.tasks.ClassificationTask",
        "init_args": {
            "model_factory": "EncoderDecoderFactory",
            "model_args": {
                "backbone": "timm_resnet18",
                "backbone_in_chans": 13,
                "decoder": "IdentityDecoder",
                "num_classes": 10,
            },
            "loss": "ce",
            "lr": 1.0e-3,
            "optimizer": "AdamW",
            "freeze_backbone": True,
        },
    },
}
TERRATORCH_REGRESSION = {
    "trainer": {"max_epochs": 3, "precision": "16-mixed"},
    "data": {"class_path": "GenericNonGeoPixelwiseRegressionDataModule", "init_args": {"batch_size": 2}},
    "model": {
        "class_path": "terratorch.tasks.PixelwiseRegressionTask",
        "init_args": {
            "model_factory": "EncoderDecoderFactory",
            "model_args": {
                "backbone": "prithvi_eo_v2_300",
                "decoder": "UNetDecoder",
                "decoder_channels": [256, 128, 64, 32],
            },
            "loss": "rmse",
            "lr": 5.0e-4,
            "optimizer": "AdamW",
        },
    },
}
REFERENCE = {
    "segmentation": (TERRATORCH_SEGMENTATION, TaskKind.SEGMENTATION),
    "classification": (TERRATORCH_CLASSIFICATION, TaskKind.CLASSIFICATION),
    "regression": (TERRATORCH_REGRESSION, TaskKind.REGRESSION),
}


def _flat(node: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, object] = {}
    for key, value in node.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else key))
    return out


def _changed(a: dict, b: dict) -> set[str]:
    fa, fb = _flat(a), _flat(b)
    return {k for k in fa.keys() | fb.keys() if fa.get(k, "<none>") != fb.get(k, "<none>")}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_geoft_configs_come_back_unchanged(path: Path):
    config = yaml.safe_load(path.read_text())
    fill = fill_form(config)
    assert apply_form(config, fill.values, copy.deepcopy(fill.values)) == config


@pytest.mark.parametrize("name", list(REFERENCE))
def test_reference_configs_fill_the_form_and_round_trip(name: str):
    config, kind = REFERENCE[name]
    fill = fill_form(config)
    assert fill.kind == kind
    args = config["model"]["init_args"]
    assert fill.values["backbone"] == args["model_args"]["backbone"]
    assert fill.values["lr"] == args["lr"]
    assert apply_form(config, fill.values, copy.deepcopy(fill.values)) == config


def test_segmentation_values_and_what_is_kept_outside_the_form():
    fill = fill_form(TERRATORCH_SEGMENTATION)
    v = fill.values
    assert v["necks"] == ["SelectIndices", "ReshapeTokensToImage", "LearnedInterpolateToPyramidal"]
    assert (v["lora_rank"], v["lora_alpha"], v["optimizer"], v["loss"]) == (8, 16, "AdamW", "dice")
    assert v["class_names"] == ["other", "water"] and v["ignore_index"] == -1
    assert "model.init_args.model_args.decoder_channels" in fill.kept
    assert "model.init_args.model_args.peft_config.replace_qkv" in fill.kept
    assert "data.init_args.no_data_replace" in fill.kept
    assert "seed_everything" in fill.kept
    assert "model.init_args.lr" not in fill.kept and "trainer.max_epochs" not in fill.kept


@pytest.mark.parametrize(
    ("field", "value", "keys"),
    [
        ("lr", 3e-5, {"model.init_args.lr"}),
        ("backbone", "prithvi_eo_v2_600", {"model.init_args.model_args.backbone"}),
        ("optimizer", "SGD", {"model.init_args.optimizer"}),
        ("lora_rank", 4, {"model.init_args.model_args.peft_config.peft_config_kwargs.r"}),
        ("class_names", ["land", "water"], {"model.init_args.class_names"}),
    ],
)
def test_one_changed_widget_changes_only_its_keys(field: str, value: object, keys: set[str]):
    fill = fill_form(TERRATORCH_SEGMENTATION)
    current = {**copy.deepcopy(fill.values), field: value}
    edited = apply_form(TERRATORCH_SEGMENTATION, fill.values, current)
    assert _changed(TERRATORCH_SEGMENTATION, edited) == keys


def test_dropping_a_neck_keeps_the_others_arguments_and_lora_off_removes_it():
    fill = fill_form(TERRATORCH_SEGMENTATION)
    current = {**fill.values, "necks": ["SelectIndices", "ReshapeTokensToImage"], "lora_rank": None}
    args = apply_form(TERRATORCH_SEGMENTATION, fill.values, current)["model"]["init_args"]["model_args"]
    assert args["necks"] == [
        {"name": "SelectIndices", "indices": [5, 11, 17, 23]},
        {"name": "ReshapeTokensToImage"},
    ]
    assert "peft_config" not in args


def test_values_no_widget_can_show_are_named_and_never_written():
    from geoft.app.form_from_config import loaded_caption, widget_fill

    fill = fill_form(TERRATORCH_SEGMENTATION)
    options = {"backbone": ["prithvi_eo_tiny"], "decoder": ["UNetDecoder"], "necks": [], "loss": ["ce"]}
    widgets = widget_fill(
        fill, TaskKind.SEGMENTATION, "p", {**options, "optimizer": ["AdamW"]}, ["pub", "none"]
    )
    assert widgets.state["model_timm"] == "prithvi_eo_v2_300"  # any backbone name fits the free-text field
    assert set(widgets.hidden) == {"decoder", "necks", "loss"}
    caption = loaded_caption("tt.yaml", fill, widgets)
    assert "model.init_args.model_args.decoder" in caption and "model.init_args.loss" in caption
    # the page's widgets hold something else for the hidden fields: the file's values stay
    current = {**widgets.shown, "decoder": "UNetDecoder", "necks": None, "loss": "ce"}
    assert apply_form(TERRATORCH_SEGMENTATION, widgets.shown, current) == TERRATORCH_SEGMENTATION
