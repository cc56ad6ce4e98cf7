"""The deploy config written next to a run's checkpoints."""

from __future__ import annotations

import copy

from geoft.runs.deploy import deploy_config


def test_deploy_config_drops_training_only_settings() -> None:
    config = {
        "seed_everything": 0,
        "optimizer": {"class_path": "torch.optim.AdamW"},
        "lr_scheduler": {"class_path": "StepLR"},
        "trainer": {
            "max_epochs": 10,
            "callbacks": [1],
            "logger": True,
            "accelerator": "gpu",
            "precision": "16-mixed",
        },
        "model": {
            "class_path": "geoft.tasks.SemanticSegmentationTask",
            "init_args": {
                "lr": 0.1,
                "optimizer": "AdamW",
                "scheduler": "StepLR",
                "model_args": {
                    "backbone": "prithvi_eo_v2_300",
                    "backbone_pretrained": True,
                    "backbone_ckpt_path": "/x",
                },
            },
        },
        "data": {"class_path": "D", "init_args": {"means": [1.0]}},
    }
    out = deploy_config(config)
    assert "optimizer" not in out and "lr_scheduler" not in out
    assert out["trainer"] == {"accelerator": "gpu", "precision": "16-mixed", "logger": False}
    init = out["model"]["init_args"]
    assert "optimizer" not in init and "scheduler" not in init and "lr" not in init
    assert init["model_args"] == {"backbone": "prithvi_eo_v2_300", "backbone_pretrained": False}
    assert out["data"] == config["data"]
    assert config["model"]["init_args"]["model_args"]["backbone_pretrained"] is True  # input untouched


def test_deploy_config_does_not_reuse_the_training_run_folder() -> None:
    out = deploy_config({"run_dir": "/runs/x", "run_name": "x", "model": {"init_args": {}}})
    assert "run_dir" not in out and out["run_name"] == "x"


def test_deploy_config_of_late_fusion_turns_off_downloads_in_each_encoder() -> None:
    encoders = {
        "S2": {"backbone": "prithvi_eo_v2_300", "pretrained": True, "ckpt_path": "/s2.pt"},
        "S1": {"backbone": "prithvi_eo_tiny"},
    }
    model_args = {"backbone": "late_fusion", "backbone_encoders": encoders, "decoder": "FCNDecoder"}
    out = deploy_config({"model": {"init_args": {"model_args": model_args}}})["model"]["init_args"][
        "model_args"
    ]
    assert "backbone_pretrained" not in out  # the late-fusion backbone takes no `pretrained`
    assert out["backbone_encoders"] == {
        "S2": {"backbone": "prithvi_eo_v2_300", "pretrained": False},
        "S1": {"backbone": "prithvi_eo_tiny", "pretrained": False},
    }
    nested = {"backbone": "late_fusion", "backbone_kwargs": {"encoders": copy.deepcopy(encoders)}}
    out = deploy_config({"model": {"init_args": {"model_args": nested}}})["model"]["init_args"]["model_args"]
    assert {m: e["pretrained"] for m, e in out["backbone_kwargs"]["encoders"].items()} == {
        "S2": False,
        "S1": False,
    }
    assert encoders["S2"]["pretrained"] is True  # input untouched
