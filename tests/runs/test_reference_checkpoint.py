"""Checkpoints trained by the reference (TerraTorch) load strictly into geoft and predict the same.

No reference needed: each test builds a geoft task, writes its weights in the reference's published
layout (key names and module structure read from the reference's decoders, necks and heads) inside
the reference's Lightning checkpoint structure, and loads that file as `geoft predict` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from geoft.config import load_configs
from geoft.errors import CheckpointError
from geoft.models.decoders.smp import SMPDecoder
from geoft.runs.reference_layout import translate_reference_state
from geoft.runs.restore import load_checkpoint, task_from_checkpoint
from geoft.tasks import SemanticSegmentationTask

BASE_ARGS: dict[str, Any] = {
    "backbone": "prithvi_eo_tiny",
    "backbone_pretrained": False,
    "backbone_img_size": 32,
    "backbone_depth": 2,
    "num_classes": 3,
}
DECODERS: dict[str, dict[str, Any]] = {
    "fcn": {
        "necks": [{"name": "SelectIndices", "indices": [1]}, {"name": "ReshapeTokensToImage"}],
        "decoder": "FCNDecoder",
        "decoder_channels": 8,
        "decoder_num_convs": 2,
    },
    "upernet": {
        "necks": [{"name": "SelectIndices", "indices": [0, 1, 1, 1]}, {"name": "ReshapeTokensToImage"}],
        "decoder": "UperNetDecoder",
        "decoder_channels": 8,
        "decoder_scale_modules": True,
    },
    "unet": {
        "necks": [
            {"name": "SelectIndices", "indices": [0, 1, 1, 1]},
            {"name": "ReshapeTokensToImage"},
            {"name": "LearnedInterpolateToPyramidal"},
        ],
        "decoder": "UNetDecoder",
        "decoder_channels": [32, 16, 8, 8],
        "head_channel_list": [8, 4],
    },
    "identity": {
        "necks": [{"name": "SelectIndices", "indices": [1]}, {"name": "ReshapeTokensToImage"}],
        "decoder": "IdentityDecoder",
        "head_channel_list": [16],
    },
    "smp_unet": {
        "necks": [
            {"name": "SelectIndices", "indices": [0, 1, 1, 1]},
            {"name": "ReshapeTokensToImage"},
            {"name": "LearnedInterpolateToPyramidal"},
        ],
        "decoder": "smp_Unet",
        "decoder_channels": [16, 8, 8],
    },
    # an auxiliary UPerNet (its pyramid pooling folded too) beside an FCN decoder
    "fcn+aux_upernet": {
        "necks": [{"name": "SelectIndices", "indices": [0, 1, 1, 1]}, {"name": "ReshapeTokensToImage"}],
        "decoder": "FCNDecoder",
        "decoder_channels": 8,
        "decoder_num_convs": 1,
    },
}
AUX_HEADS: dict[str, list[dict[str, Any]]] = {
    "fcn+aux_upernet": [
        {
            "name": "aux",
            "decoder": "UperNetDecoder",
            "decoder_args": {"decoder_channels": 8, "head_dropout": 0.1},
        }
    ],
}

# geoft name -> the reference's name, from the reference's source (the inverse of what geoft maps)
TO_REFERENCE = (
    (r"^(.*\.convs\.\d+\.2)\.norm\.", r"\1.ln."),  # FCNDecoder's Norm2d holds `ln`
    (r"^(.*\.decoder)\.scale\.fpn1\.", r"\1.fpn1."),  # UperNet scale_modules live on the decoder
    (r"^(.*\.decoder)\.scale\.fpn2\.", r"\1.fpn2.0."),
    (r"^(.*\.fpn2)\.(weight|bias)$", r"\1.0.\2"),  # LearnedInterpolateToPyramidal: fpn2 = Sequential
    (r"^(.*\.decoder)\.psp_bottleneck\.0\.", r"\1.bottleneck.conv."),  # ConvModule(conv, norm, act)
    (r"^(.*\.decoder)\.psp_bottleneck\.1\.", r"\1.bottleneck.norm."),
    (r"^(.*\.(?:lateral_convs\.\d+|fpn_convs\.\d+|fpn_bottleneck))\.0\.", r"\1.conv."),
    (r"^(.*\.(?:lateral_convs\.\d+|fpn_convs\.\d+|fpn_bottleneck))\.1\.", r"\1.norm."),
    (r"^model\.neck\.necks\.(\d+)\.", r"model.neck.\1."),  # the reference's neck list is a Sequential
)
AUX_TO_REFERENCE = (  # the reference's auxiliary head: Sequential(decoder, head)
    (r"^(model\.aux_heads\.[^.]+)\.decoder\.", r"\1.0."),
    (r"^(model\.aux_heads\.[^.]+)\.head\.", r"\1.1."),
)
PSP = re.compile(r"^(.*\.decoder)\.psp\.stages\.(\d+)\.1\.(weight|bias)$")
HEAD_BLOCK = re.compile(r"^(.*\.head\.head\.0)\.(\d+)\.(weight|bias)$")


def geoft_task(decoder: str) -> SemanticSegmentationTask:
    torch.manual_seed(0)
    task = SemanticSegmentationTask(
        model_factory="EncoderDecoderFactory",
        model_args={**BASE_ARGS, **DECODERS[decoder]},
        loss="ce",
        ignore_index=-1,
        aux_heads=AUX_HEADS.get(decoder),
    )
    with torch.no_grad():  # BatchNorm statistics and weights away from their init
        for name, value in task.model.state_dict().items():
            if value.is_floating_point():
                value.add_(
                    0.05 * torch.rand_like(value) if "running_var" in name else 0.05 * torch.randn_like(value)
                )
    return task.eval()


def unfolded(
    weight: torch.Tensor, bias: torch.Tensor, ref: str, g: torch.Generator
) -> dict[str, torch.Tensor]:
    """geoft's conv with a bias as the reference's ConvModule ``ref``: conv without bias + a
    BatchNorm (eps 1e-5) of random statistics, the same function in eval mode."""
    gamma, mean = torch.rand(len(bias), generator=g) + 0.5, torch.randn(len(bias), generator=g)
    var = torch.rand(len(bias), generator=g) + 0.5
    scale = gamma / torch.sqrt(var + 1e-5)
    return {
        ref + "conv.weight": weight / scale.view(-1, 1, 1, 1),
        ref + "norm.weight": gamma,
        ref + "norm.bias": bias + mean * scale,
        ref + "norm.running_mean": mean,
        ref + "norm.running_var": var,
        ref + "norm.num_batches_tracked": torch.tensor(2),
    }


def to_reference_layout(task: SemanticSegmentationTask) -> dict[str, torch.Tensor]:
    """geoft's state dict as the reference saves the same model."""
    ours = task.state_dict()
    out: dict[str, torch.Tensor] = {}
    g = torch.Generator().manual_seed(1)
    for key, value in ours.items():
        psp = PSP.match(key)
        if psp:  # the reference's branch: conv without bias + BatchNorm(eps 1e-5), folded in geoft
            if psp[3] == "weight":
                bias = ours[key[: -len("weight")] + "bias"]
                out.update(unfolded(value, bias, f"{psp[1]}.psp_modules.{psp[2]}.1.", g))
            continue
        head = HEAD_BLOCK.match(key)
        if head and int(head[2]) % 2 == 0:  # (conv, ReLU) blocks nested: block i's conv is i.0
            key = f"{head[1]}.{int(head[2]) // 2}.0.{head[3]}"
        for pattern, replacement in TO_REFERENCE:
            key = re.sub(pattern, replacement, key)
        out[key] = value.clone()
    if isinstance(task.model.decoder, SMPDecoder):  # the reference's SMPDecoderWrapper
        out = {
            re.sub(r"^model\.decoder\.decoder\.", "model.decoder._smp_decoder.", k): v for k, v in out.items()
        }
    for pattern, replacement in AUX_TO_REFERENCE:
        out = {re.sub(pattern, replacement, key): value for key, value in out.items()}
    encoder = task.model.encoder  # the reference saves its fixed sin-cos table, with the CLS row
    out["model.encoder.pos_embed"] = torch.cat([torch.zeros(1, 1, encoder.embed_dim), encoder.pos_embed], 1)
    return out


def reference_checkpoint(
    task: SemanticSegmentationTask,
    model_args: dict[str, Any],
    path: Path,
    lightning_state: dict[str, Any] | None = None,
) -> Path:
    """A Lightning checkpoint as the reference's `terratorch fit` writes it (its top-level keys).

    ``lightning_state`` replaces what Lightning itself writes (loops, counters, optimizer states).
    """
    hparams = {
        "_class_path": "terratorch.tasks.SemanticSegmentationTask",
        "model_args": model_args,
        "model_factory": "EncoderDecoderFactory",
        "loss": "ce",
        "ignore_index": -1,
        "lr": 0.001,
        "freeze_backbone": False,
        "freeze_decoder": False,
        "freeze_head": False,
        "plot_on_val": 10,
        "output_on_inference": "prediction",
        "output_most_probable": True,
    }
    monitor = "StateDictAwareModelCheckpoint{'monitor': 'val/loss', 'mode': 'min'}"
    torch.save(
        {
            "epoch": 0,
            "global_step": 2,
            "pytorch-lightning_version": "2.6.6",
            "state_dict": to_reference_layout(task),
            "loops": {"fit_loop": {"state_dict": {}}},
            "callbacks": {monitor: {"monitor": "val/loss", "best_model_score": torch.tensor(1.6)}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.001, "params": []}]}],
            "lr_schedulers": [],
            "hparams_name": "kwargs",
            "hyper_parameters": hparams,
            **(lightning_state or {}),
        },
        path,
    )
    return path


def reference_config(
    model_args: dict[str, Any], path: Path, aux_heads: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    init_args = {"model_factory": "EncoderDecoderFactory", "model_args": model_args, "loss": "ce"}
    config = {
        "model": {
            "class_path": "terratorch.tasks.SemanticSegmentationTask",
            "init_args": {**init_args, **({"aux_heads": aux_heads} if aux_heads else {})},
        }
    }
    path.write_text(yaml.safe_dump(config))
    return load_configs([str(path)], lambda _: None)


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_reference_checkpoint_loads_strictly_and_predicts_the_same(decoder: str, tmp_path: Path) -> None:
    model_args = {**BASE_ARGS, **DECODERS[decoder]}
    original = geoft_task(decoder)
    ckpt_path = reference_checkpoint(original, model_args, tmp_path / "reference.ckpt")
    layout = to_reference_layout(original)
    assert set(layout) != set(original.state_dict())  # the layouts do differ
    said: list[str] = []
    config = reference_config(model_args, tmp_path / "config.yaml", AUX_HEADS.get(decoder))
    restored = task_from_checkpoint(load_checkpoint(ckpt_path), config, str(ckpt_path), said.append)
    assert len(said) == 1 and "translated the reference's (TerraTorch's) checkpoint layout" in said[0]
    assert "model.encoder.pos_embed" in said[0]
    x = torch.randn(2, 6, 32, 32)
    with torch.no_grad():
        expected, got = original.model(x), restored.model(x)
    assert got.output.shape == (2, 3, 32, 32)
    assert set(got.auxiliary_heads) == {head["name"] for head in AUX_HEADS.get(decoder, [])}
    for ours, theirs in [(got.output, expected.output)] + [
        (got.auxiliary_heads[name], expected.auxiliary_heads[name]) for name in got.auxiliary_heads
    ]:
        assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5), float((ours - theirs).abs().max())


def test_the_lightning_hook_translates_for_resume_and_predict(tmp_path: Path) -> None:
    original = geoft_task("upernet")
    model_args = {**BASE_ARGS, **DECODERS["upernet"]}
    ckpt = load_checkpoint(reference_checkpoint(original, model_args, tmp_path / "r.ckpt"))
    task = SemanticSegmentationTask(model_factory="EncoderDecoderFactory", model_args=model_args).eval()
    task.on_load_checkpoint(ckpt)  # what Lightning calls before its strict load (fit/predict --ckpt_path)
    task.load_state_dict(ckpt["state_dict"], strict=True)
    x = torch.randn(1, 6, 32, 32)
    with torch.no_grad():
        assert torch.allclose(task.model(x).output, original.model(x).output, atol=1e-5, rtol=1e-5)


def test_geoft_checkpoints_and_other_models_are_left_alone(tmp_path: Path) -> None:
    task = geoft_task("fcn")
    own = task.state_dict()
    said: list[str] = []
    assert translate_reference_state(own, task, said.append) is own and said == []
    # the reference's layout of another model (2 FCN blocks, configured 3): nothing translated, the
    # strict load names the keys
    ckpt_path = reference_checkpoint(task, {**BASE_ARGS, **DECODERS["fcn"]}, tmp_path / "other.ckpt")
    config = reference_config(
        {**BASE_ARGS, **DECODERS["fcn"], "decoder_num_convs": 3}, tmp_path / "fcn3.yaml"
    )
    with pytest.raises(CheckpointError, match="does not fit the configured model"):
        task_from_checkpoint(load_checkpoint(ckpt_path), config, str(ckpt_path), said.append)
    assert said == []
