"""A checkpoint the reference (TerraTorch) trained predicts the same in geoft as in the reference.

Runs only where the reference environment ``benchmarks/.venv-ref`` exists: the reference trains
Prithvi-EO tiny + each decoder for 2 steps with its Lightning trainer, saves the checkpoint and its
logits for a fixed input; geoft loads the checkpoint with the reference's config and must match.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from geoft.config import load_configs
from geoft.runs.restore import load_checkpoint, task_from_checkpoint

REPO = Path(__file__).resolve().parents[2]
REF_PYTHON = REPO / "benchmarks" / ".venv-ref" / "bin" / "python"
DECODERS = {
    "fcn": {"necks": [{"name": "SelectIndices", "indices": [3]}, {"name": "ReshapeTokensToImage"}],
            "decoder": "FCNDecoder", "decoder_channels": 16},
    "upernet": {"necks": [{"name": "SelectIndices", "indices": [0, 1, 2, 3]}, {"name": "ReshapeTokensToImage"}],
                "decoder": "UperNetDecoder", "decoder_channels": 16, "decoder_scale_modules": True},
    "unet": {"necks": [{"name": "SelectIndices", "indices": [0, 1, 2, 3]}, {"name": "ReshapeTokensToImage"},
                       {"name": "LearnedInterpolateToPyramidal"}],
             "decoder": "UNetDecoder", "decoder_channels": [64, 32, 16, 8], "head_channel_list": [8]},
    "identity": {"necks": [{"name": "SelectIndices", "indices": [3]}, {"name": "ReshapeTokensToImage"}],
                 "decoder": "IdentityDecoder", "head_channel_list": [32]},
}  # fmt: skip
MODEL_ARGS = {
    "backbone": "prithvi_eo_tiny",
    "backbone_pretrained": False,
    "backbone_img_size": 64,
    "num_classes": 3,
}

SCRIPT = r"""
import sys, yaml, torch, lightning
from torch.utils.data import DataLoader
from terratorch.tasks import SemanticSegmentationTask
torch.set_float32_matmul_precision("highest")  # importing terratorch sets "medium" (bf16 on AMX CPUs)
out, model_args = sys.argv[1], yaml.safe_load(sys.argv[2])
torch.manual_seed(0)
task = SemanticSegmentationTask(model_args=model_args, model_factory="EncoderDecoderFactory", loss="ce",
                                ignore_index=-1, lr=1e-2)
data = [{"image": torch.randn(6, 64, 64), "mask": torch.randint(0, 3, (64, 64))} for _ in range(4)]
trainer = lightning.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False)
trainer.fit(task, DataLoader(data, batch_size=2))
trainer.save_checkpoint(f"{out}/reference.ckpt")
x = torch.randn(2, 6, 64, 64)
with torch.no_grad():
    logits = task.eval().model(x).output
torch.save({"x": x, "logits": logits}, f"{out}/logits.pt")
"""


@pytest.mark.slow
@pytest.mark.parametrize("decoder", list(DECODERS))
def test_reference_checkpoint_predicts_the_same_in_geoft(decoder: str, tmp_path: Path) -> None:
    if not REF_PYTHON.exists():
        pytest.skip(
            f"REFERENCE MISSING: {REF_PYTHON} not found; run benchmarks/setup_reference.sh to compare"
        )
    model_args = {**MODEL_ARGS, **DECODERS[decoder]}
    run = subprocess.run(
        [str(REF_PYTHON), "-c", SCRIPT, str(tmp_path), yaml.safe_dump(model_args)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump({"model": {
        "class_path": "terratorch.tasks.SemanticSegmentationTask",
        "init_args": {"model_factory": "EncoderDecoderFactory", "model_args": model_args, "loss": "ce"},
    }}))  # fmt: skip
    said: list[str] = []
    ckpt = tmp_path / "reference.ckpt"
    task = task_from_checkpoint(
        load_checkpoint(ckpt), load_configs([str(config_file)], said.append), str(ckpt), said.append
    )
    assert any("translated the reference's" in s for s in said), said
    ref = torch.load(tmp_path / "logits.pt", weights_only=True)
    with torch.no_grad():
        ours = task.model(ref["x"]).output
    assert torch.allclose(ours, ref["logits"], atol=1e-5, rtol=1e-5), float(
        (ours - ref["logits"]).abs().max()
    )
