"""``geoft fit`` a late-fusion model one step, then ``geoft predict-scene`` from its checkpoint.

Restoring the model for inference turns weight downloads off; for ``backbone: late_fusion`` that is
done inside each encoder (the late-fusion backbone itself takes no ``pretrained``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from geoft.cli import main
from geoft.tasks import SemanticSegmentationTask
from geoft.tasks.tiled_inference import tiled_inference
from tests.config.test_carry_over_kinds import _write_two_modality_dataset
from tests.tasks.test_scene_multimodal import PARAMS, probabilities, write_tif

ENCODER = {"backbone": "prithvi_eo_tiny", "img_size": 32, "depth": 2}
MEANS = {"S2": [0.5] * 6, "S1": [0.5] * 2}
STDS = {"S2": [0.3] * 6, "S1": [0.3] * 2}


def late_fusion_config(data: Path, out: Path) -> dict:
    model_args = {
        "backbone": "late_fusion",
        "backbone_encoders": {"S2": {**ENCODER, "in_chans": 6}, "S1": {**ENCODER, "in_chans": 2}},
        "backbone_merge_method": "concat",
        "decoder": "FCNDecoder",
        "decoder_channels": 8,
        "num_classes": 2,
    }
    roots = {"S2": str(data / "S2"), "S1": str(data / "S1")}
    return {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "precision": "32-true",
            "max_steps": 1,
            "limit_val_batches": 1,
            "num_sanity_val_steps": 0,
            "enable_progress_bar": False,
            "default_root_dir": str(out),
            "callbacks": [{"class_path": "ModelCheckpoint", "init_args": {"dirpath": str(out / "ckpt")}}],
        },
        "model": {
            "class_path": "SemanticSegmentationTask",
            "init_args": {
                "model_factory": "EncoderDecoderFactory",
                "model_args": model_args,
                "loss": "ce",
                "ignore_index": -1,
                "tiled_inference_parameters": PARAMS,
            },
        },
        "data": {
            "class_path": "GenericMultiModalDataModule",
            "init_args": {
                "task": "segmentation",
                "batch_size": 2,
                "num_workers": 0,
                "modalities": ["S2", "S1"],
                "train_data_root": roots,
                "train_label_data_root": str(data / "labels"),
                "val_data_root": roots,
                "val_label_data_root": str(data / "labels"),
                "train_split": str(data / "train.txt"),
                "val_split": str(data / "val.txt"),
                "allow_substring_file_names": True,
                "image_grep": {"S2": "*_S2Hand.tif", "S1": "*_S1Hand.tif"},
                "label_grep": "*_LabelHand.tif",
                "no_label_replace": -1,
                "means": MEANS,
                "stds": STDS,
                "num_classes": 2,
            },
        },
    }


def test_predict_scene_from_a_trained_late_fusion_checkpoint(tmp_path: Path) -> None:
    config = late_fusion_config(_write_two_modality_dataset(tmp_path / "data"), tmp_path / "out")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["fit", "-c", str(config_path)]) == 0
    (ckpt,) = (tmp_path / "out" / "ckpt").glob("*.ckpt")

    rng = np.random.default_rng(1)
    scene = {"S2": rng.random((6, 45, 40), dtype=np.float32), "S1": rng.random((2, 45, 40), dtype=np.float32)}
    for name, image in scene.items():
        write_tif(tmp_path / f"{name}.tif", image)
    args = ["predict-scene", "-c", str(config_path), "--ckpt_path", str(ckpt),
            "--input", f"S2={tmp_path / 'S2.tif'}", "--input", f"S1={tmp_path / 'S1.tif'}",
            "--output", str(tmp_path / "pred.tif"), "--probabilities", str(tmp_path / "p.tif"),
            "--precision", "32-true"]  # fmt: skip
    assert main(args) == 0

    init = dict(config["model"]["init_args"])
    task = SemanticSegmentationTask(**{k: v for k, v in init.items() if k != "tiled_inference_parameters"})
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    task.load_state_dict(state, strict=True)
    task.eval()
    x = {
        name: ((torch.from_numpy(image) - torch.tensor(MEANS[name]).view(-1, 1, 1)) / 0.3)[None]
        for name, image in scene.items()
    }
    with torch.no_grad():
        expected = torch.softmax(tiled_inference(lambda t: task(t).output, x, PARAMS)[0], dim=0).numpy()
    np.testing.assert_allclose(probabilities(tmp_path / "p.tif"), expected, atol=1e-4)
