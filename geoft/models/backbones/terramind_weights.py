"""Load TerraMind checkpoints in the published layout into :class:`TerraMindViT`, strictly.

A published file (``TerraMind_v1_<size>.pt``) is the state dict of the whole pre-training model:
patch embeddings of every raw and tokenized modality, the encoder, and the decoder with its
embeddings and mask token. The encoder of the configured modalities loads strictly; everything
else is dropped with its reason in the :class:`LoadReport`, and each patch embedding is re-cut
from the published band list to the configured bands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from geoft.errors import CheckpointError
from geoft.models.backbones.bands import BandLike, band_label
from geoft.models.backbones.checkpoint import LoadReport, load_exact, mismatch_error, read_state_dict
from geoft.models.backbones.downloads import PublishedWeights
from geoft.models.backbones.terramind_modalities import RAW_MODALITIES, Modality
from geoft.models.backbones.terramind_vit import TerraMindViT, sincos_2d

_WRAPPERS = ("module", "model", "backbone", "net", "_timm_module")
_DECODER = ("decoder.", "decoder_embeddings.", "decoder_norm.", "decoder_proj_context.")
_BLOCK = re.compile(r"^encoder\.(\d+)\.(.+)$")
# published gated-MLP names -> timm SwiGLU names
_GATED = {"mlp.fc1.weight": "mlp.fc1_g.weight", "mlp.fc3.weight": "mlp.fc1_x.weight"}


PUBLISHED_WEIGHTS: dict[str, PublishedWeights] = {
    "terramind_v1_tiny": PublishedWeights("ibm-esa-geospatial/TerraMind-1.0-tiny", "TerraMind_v1_tiny.pt"),
    "terramind_v1_small": PublishedWeights("ibm-esa-geospatial/TerraMind-1.0-small", "TerraMind_v1_small.pt"),
    "terramind_v1_base": PublishedWeights("ibm-esa-geospatial/TerraMind-1.0-base", "TerraMind_v1_base.pt"),
    "terramind_v1_large": PublishedWeights("ibm-esa-geospatial/TerraMind-1.0-large", "TerraMind_v1_large.pt"),
    "terramind_v01_base": PublishedWeights("FAST-EO/TerraMind-0.1-base", "TerraMind_v01_base.pt"),
}


def download_published(variant: str) -> Path:
    """Local path of the published checkpoint of ``variant`` (from the cache or the Hub)."""
    return PUBLISHED_WEIGHTS[variant].download(variant)


def load_terramind_checkpoint(
    model: TerraMindViT,
    ckpt: str | Path | dict[str, torch.Tensor],
    published_modalities: Sequence[str],
    name: str = "TerraMindViT",
    source: str | None = None,
) -> LoadReport:
    """Load a TerraMind checkpoint (file or state dict) into ``model`` strictly; return the report.

    Args:
        model: the encoder; each of its modalities says the band of each input channel.
        ckpt: path of a weight file, or an already-read state dict.
        published_modalities: modalities the checkpoint must hold (``S2L2A``, ...). Other configured
            modalities load when the file has them and otherwise start fresh, as the report says.
        name: the model's name for messages.
        source: how to call the checkpoint in messages (default: the path).
    """
    if isinstance(ckpt, dict):
        state, label = ckpt, source or "the given state dict"
    else:
        state, label = read_state_dict(ckpt), source or str(ckpt)
    report = LoadReport(source=label)
    state = _strip_wrappers(state)
    gated = any(k.endswith("mlp.fc1_g.weight") for k in model.state_dict())
    mapped = _encoder_part(state, model, gated, report)
    own = model.state_dict()
    fresh: list[str] = []
    for modality in model.modalities:
        prefix = f"encoder_embeddings.{modality.key}."
        weight_key = prefix + "proj.weight"
        if weight_key in mapped:
            mapped[weight_key] = _select_bands(mapped[weight_key], model, modality, report, name)
        elif modality.name not in published_modalities:
            for key in (weight_key, prefix + "mod_emb"):
                mapped.setdefault(key, own[key])
                fresh.append(key)
            report.notes.append(
                f"Modality {modality.name} is not in {label}: its patch and modality embeddings start fresh."
            )
    if "missing_mod_token" in own and "missing_mod_token" not in mapped:
        mapped["missing_mod_token"] = own["missing_mod_token"]
        fresh.append("missing_mod_token")
        report.notes.append("missing_mod_token (merge_method='concat') is not pre-trained: it starts fresh.")
    load_exact(model, mapped, report, name)
    report.loaded = [k for k in report.loaded if k not in fresh]
    model.load_report = report
    report.log()
    return report


def _strip_wrappers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    while True:
        heads = {k.split(".", 1)[0] for k in state}
        if len(heads) != 1 or next(iter(heads)) not in _WRAPPERS:
            return state
        state = {k.split(".", 1)[1]: v for k, v in state.items()}


def _encoder_part(
    state: dict[str, torch.Tensor], model: TerraMindViT, gated: bool, report: LoadReport
) -> dict[str, torch.Tensor]:
    """Keys of the encoder, renamed to the model's; everything else dropped with a reason."""
    configured = {m.key for m in model.modalities}
    raw_keys = {key: name for name, (key, _) in RAW_MODALITIES.items()}
    out: dict[str, torch.Tensor] = {}
    checked_positions = False
    for key, value in state.items():
        block = _BLOCK.match(key)
        if key.startswith(_DECODER) or key == "mask_token":
            report.dropped[key] = "pre-training decoder, not part of the encoder"
        elif key.startswith("tokenizer."):
            report.dropped[key] = "tokenizer weights (tokenizer-based inputs are not supported)"
        elif key.startswith("encoder_embeddings."):
            modality, _, rest = key[len("encoder_embeddings.") :].partition(".")
            if modality not in configured:
                reason = (
                    f"modality {raw_keys[modality]} is not configured (add it to modalities to use it)"
                    if modality in raw_keys
                    else f"embedding of {modality}, a tokenizer-based or unconfigured modality"
                )
                report.dropped[key] = reason
            elif rest == "pos_emb":
                report.dropped[key] = "fixed sin-cos position table, recomputed for each input grid"
                if not checked_positions:
                    report.notes.append(_position_note(value, model))
                    checked_positions = True
            else:
                out[key] = value
        elif key.endswith(("norm1.bias", "norm2.bias")) or key == "encoder_norm.bias":
            if block and int(block.group(1)) >= model.depth:
                report.dropped[key] = f"encoder block beyond this model's depth={model.depth}"
            elif torch.count_nonzero(value):
                raise CheckpointError(
                    f"{report.source}: {key} is not zero, but TerraMind's LayerNorms have no bias.",
                    hint="Is this a TerraMind checkpoint?",
                )
            else:
                report.dropped[key] = "zero bias of a bias-free LayerNorm"
        elif block and int(block.group(1)) >= model.depth:
            report.dropped[key] = f"encoder block beyond this model's depth={model.depth}"
        elif key == "missing_mod_token" and "missing_mod_token" not in model.state_dict():
            report.dropped[key] = "token for missing modalities, used with merge_method='concat' only"
        elif block and gated and block.group(2) in _GATED:
            out[f"encoder.{block.group(1)}.{_GATED[block.group(2)]}"] = value
        else:
            out[key] = value
    return out


def _position_note(table: torch.Tensor, model: TerraMindViT) -> str:
    tokens = table.shape[-2]
    side = int(round(tokens**0.5))
    if table.shape[-1] == model.embed_dim and side * side == tokens:
        if torch.allclose(table.reshape(1, tokens, -1).float(), sincos_2d(side, model.embed_dim), atol=1e-5):
            return (
                f"Position embeddings: the checkpoint's table ({side}x{side}) equals geoft's sin-cos table; "
                f"geoft computes it for img_size={model.img_size} and resizes it to each input grid."
            )
    return f"Position embeddings: the checkpoint's table {list(table.shape)} differs from the sin-cos layout; not used."


def _select_bands(
    weight: torch.Tensor, model: TerraMindViT, modality: Modality, report: LoadReport, name: str
) -> torch.Tensor:
    """Cut a published patch embedding ``[D, p*p*C_file]`` (channel fastest) to the modality's bands."""
    key = f"encoder_embeddings.{modality.key}.proj.weight"
    current = model.encoder_embeddings[modality.key].proj.weight.detach()
    pixels = model.patch_size**2
    if weight.ndim != 2 or weight.shape[0] != current.shape[0] or weight.shape[1] % pixels:
        raise mismatch_error(name, report.source, {key: (tuple(weight.shape), tuple(current.shape))})
    file_channels = weight.shape[1] // pixels
    published: Sequence[BandLike] = modality.published_bands
    if not published:  # a user-defined modality: the file must fit as it is
        if weight.shape != current.shape:
            raise mismatch_error(name, report.source, {key: (tuple(weight.shape), tuple(current.shape))})
        return weight
    if file_channels != len(published):
        raise CheckpointError(
            f"{report.source}: {key} has {file_channels} input channels but the published bands of "
            f"{modality.name} are {len(published)} ({', '.join(map(band_label, published))}).",
            hint=f"Pass pretrained_bands={{'{modality.name}': [...]}} naming the checkpoint's bands in order.",
        )
    if list(modality.bands) == list(published):
        return weight
    source = weight.view(weight.shape[0], pixels, file_channels)
    selected = current.clone().to(weight.dtype).view(current.shape[0], pixels, modality.channels)
    copied, fresh = [], []
    for j, band in enumerate(modality.bands):
        if band in published:
            i = list(published).index(band)
            selected[:, :, j] = source[:, :, i]
            copied.append(f"{band_label(band)}<-{i}")
        else:
            fresh.append(band_label(band))
    how = f"{modality.name} bands re-cut from checkpoint channels ({', '.join(copied) or 'none'})"
    if fresh:
        how += f"; new band(s) {', '.join(fresh)} keep a fresh initialisation"
    report.adapted[key] = how
    return selected.reshape(current.shape)
