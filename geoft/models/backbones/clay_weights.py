"""Published Clay checkpoints and how they load into :class:`~geoft.models.backbones.clay_vit.ClayViT`.

Both published files (v1 ``clay-v1-base.ckpt``, v1.5 ``clay-v1.5.ckpt``) are Lightning checkpoints
of Clay's MAE module: ``state_dict`` holds ``model.encoder.*`` (the encoder), ``model.decoder.*``
(the MAE decoder), ``model.teacher.*`` (the frozen distillation teacher) and ``model.proj.*`` /
``model.mrl.*`` (the heads of the representation loss). The encoder loads strictly, after renaming
its transformer keys to timm's block names; everything else is dropped with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from geoft.errors import CheckpointError
from geoft.models.backbones.checkpoint import LoadReport, load_exact, read_state_dict
from geoft.models.backbones.clay_vit import ClayViT
from geoft.models.backbones.downloads import PublishedWeights

PUBLISHED_WEIGHTS: dict[str, PublishedWeights] = {
    "clay_v1_base": PublishedWeights("made-with-clay/Clay-legacy", "v1/clay-v1-base.ckpt"),
    "clay_mae_large": PublishedWeights("made-with-clay/Clay", "v1.5/clay-v1.5.ckpt"),
}

# Published (Clay) name -> geoft (timm block) name, inside ``transformer.``.
_BLOCK_KEYS = {
    "0.norm": "norm1",
    "0.to_qkv": "attn.qkv",
    "0.to_out": "attn.proj",
    "1.net.0": "norm2",
    "1.net.1": "mlp.fc1",
    "1.net.3": "mlp.fc2",
}
_LAYER = re.compile(r"^transformer\.layers\.(\d+)\.(\d\.(?:norm|to_qkv|to_out|net\.\d))\.(weight|bias)$")
_DROPPED = {
    "decoder": "MAE decoder, not part of the encoder",
    "teacher": "distillation teacher of the pre-training loss",
    "proj": "projection head of the pre-training representation loss",
    "mrl": "Matryoshka head of the pre-training representation loss",
}


def download_published(variant: str) -> Path:
    return PUBLISHED_WEIGHTS[variant].download(variant)


def published_to_geoft(key: str) -> str:
    """Name of a published encoder key (without ``model.encoder.``) in :class:`ClayViT`."""
    if key == "transformer.norm.weight" or key == "transformer.norm.bias":
        return key[len("transformer.") :]
    match = _LAYER.match(key)
    if match and match.group(2) in _BLOCK_KEYS:
        return f"blocks.{match.group(1)}.{_BLOCK_KEYS[match.group(2)]}.{match.group(3)}"
    return key


def geoft_to_published(key: str) -> str:
    """Inverse of :func:`published_to_geoft` (for writing checkpoints in the published layout)."""
    if key in ("norm.weight", "norm.bias"):
        return "transformer." + key
    match = re.match(r"^blocks\.(\d+)\.(.+)\.(weight|bias)$", key)
    if match:
        inverse = {v: k for k, v in _BLOCK_KEYS.items()}
        if match.group(2) in inverse:
            return f"transformer.layers.{match.group(1)}.{inverse[match.group(2)]}.{match.group(3)}"
    return key


def load_clay_checkpoint(
    model: ClayViT,
    ckpt: str | Path | dict[str, torch.Tensor],
    name: str = "Clay",
    source: str | None = None,
) -> LoadReport:
    """Load a Clay checkpoint (published Lightning layout, or a bare encoder state dict) strictly."""
    if isinstance(ckpt, dict):
        state, label = ckpt, source or "the given state dict"
    else:
        state, label = read_state_dict(ckpt), source or str(ckpt)
    report = LoadReport(source=label)
    encoder: dict[str, torch.Tensor] = {}
    own = set(model.state_dict())
    for key, value in state.items():
        inner = key.removeprefix("model.")
        head = inner.split(".", 1)[0]
        if inner.startswith("encoder."):
            encoder[published_to_geoft(inner[len("encoder.") :])] = value
        elif head in _DROPPED and inner != key:
            report.dropped[key] = _DROPPED[head]
        elif published_to_geoft(key) in own:  # a bare encoder state dict, published or geoft names
            encoder[published_to_geoft(key)] = value
        else:
            raise CheckpointError(
                f"{label}: key {key!r} is neither Clay encoder nor a known pre-training part "
                f"({', '.join('model.' + k for k in _DROPPED)}).",
                hint="Is this a Clay checkpoint? Clay's published files keep the encoder under model.encoder.",
            )
    if not encoder:
        raise CheckpointError(f"{label} holds no Clay encoder weights (no model.encoder.* keys).")
    load_exact(model, encoder, report, name)
    report.notes.append(
        f"Patch kernels are generated for the bands' wavelengths ({', '.join(f'{w:g}' for w in model.waves.tolist())} "
        f"um); positions are recomputed for each grid at GSD {model.gsd:g} m."
    )
    model.load_report = report
    report.log()
    return report
