"""Published Prithvi-EO checkpoints: where they are, and how they load into :class:`PrithviViT`.

Published files are MAE state dicts: ``encoder.*`` and ``decoder.*`` keys (Prithvi-EO-2.0), or
flat keys with ``decoder_*`` and ``mask_token`` beside the encoder's (Prithvi-EO-1.0). The encoder
part loads strictly; the decoder, the mask token and the fixed position table are dropped, and
the patch embedding is re-cut for the requested bands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from geoft.errors import CheckpointError
from geoft.models.backbones.bands import BandLike, band_label
from geoft.models.backbones.checkpoint import LoadReport, load_exact, mismatch_error, read_state_dict
from geoft.models.backbones.downloads import PublishedWeights
from geoft.models.backbones.prithvi_embed import sincos_3d
from geoft.models.backbones.prithvi_vit import PrithviViT

PATCH_WEIGHT = "patch_embed.proj.weight"
_WRAPPERS = ("module", "model", "backbone", "_timm_module", "net")


PUBLISHED_WEIGHTS: dict[str, PublishedWeights] = {
    "prithvi_eo_v1_100": PublishedWeights("ibm-nasa-geospatial/Prithvi-EO-1.0-100M", "Prithvi_EO_V1_100M.pt"),
    "prithvi_eo_v2_tiny_tl": PublishedWeights(
        "ibm-nasa-geospatial/Prithvi-EO-2.0-tiny-TL", "Prithvi_EO_V2_tiny_TL.pt"
    ),
    "prithvi_eo_v2_100_tl": PublishedWeights(
        "ibm-nasa-geospatial/Prithvi-EO-2.0-100M-TL", "Prithvi_EO_V2_100M_TL.pt"
    ),
    "prithvi_eo_v2_300": PublishedWeights("ibm-nasa-geospatial/Prithvi-EO-2.0-300M", "Prithvi_EO_V2_300M.pt"),
    "prithvi_eo_v2_300_tl": PublishedWeights(
        "ibm-nasa-geospatial/Prithvi-EO-2.0-300M-TL", "Prithvi_EO_V2_300M_TL.pt"
    ),
    "prithvi_eo_v2_600": PublishedWeights("ibm-nasa-geospatial/Prithvi-EO-2.0-600M", "Prithvi_EO_V2_600M.pt"),
    "prithvi_eo_v2_600_tl": PublishedWeights(
        "ibm-nasa-geospatial/Prithvi-EO-2.0-600M-TL", "Prithvi_EO_V2_600M_TL.pt"
    ),
}


def download_published(variant: str) -> Path:
    """Local path of the published checkpoint of ``variant`` (from the cache or the Hub)."""
    return PUBLISHED_WEIGHTS[variant].download(variant)


def load_prithvi_checkpoint(
    model: PrithviViT,
    ckpt: str | Path | dict[str, torch.Tensor],
    pretrained_bands: Sequence[BandLike],
    name: str = "PrithviViT",
    source: str | None = None,
) -> LoadReport:
    """Load a Prithvi checkpoint (file or state dict) into ``model`` strictly; return the report.

    Args:
        model: the encoder; its ``bands`` (if set) say which input channel is which band.
        ckpt: path of a weight file, or an already-read state dict.
        pretrained_bands: the bands of the checkpoint's patch embedding, in order.
        name: the model's name for messages.
        source: how to call the checkpoint in messages (default: the path).
    """
    if isinstance(ckpt, dict):
        state, label = ckpt, source or "the given state dict"
    else:
        state, label = read_state_dict(ckpt), source or str(ckpt)
    report = LoadReport(source=label)
    encoder_state = _encoder_part(_strip_wrappers(state), model, report)
    if PATCH_WEIGHT in encoder_state:
        encoder_state[PATCH_WEIGHT] = _select_bands(
            encoder_state[PATCH_WEIGHT], model, pretrained_bands, report, name
        )
    load_exact(model, encoder_state, report, name)
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
    state: dict[str, torch.Tensor], model: PrithviViT, report: LoadReport
) -> dict[str, torch.Tensor]:
    """Keys of the encoder, renamed to the model's; drop everything else with a reason."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key[len("encoder.") :] if key.startswith("encoder.") else key
        if key.startswith("decoder.") or k.startswith("decoder_") or k == "mask_token":
            report.dropped[key] = "MAE decoder, not part of the encoder"
        elif k == "pos_embed":
            report.dropped[key] = "fixed sin-cos position table, recomputed for each input grid"
            report.notes.append(_pos_embed_note(value, model))
        elif k.startswith("temporal_embed_enc.") and not model.temporal_encoding:
            report.dropped[key] = "time encoding, the model is built without it (use a _tl variant)"
        elif k.startswith("location_embed_enc.") and not model.location_encoding:
            report.dropped[key] = "location encoding, the model is built without it (use a _tl variant)"
        else:
            out[k] = value
    return out


def _pos_embed_note(table: torch.Tensor, model: PrithviViT) -> str:
    """Say for which grid the checkpoint's table was made, and whether geoft recomputes the same values."""
    tokens = table.shape[-2] - 1
    if table.shape[-1] != model.embed_dim or tokens < 1:
        return f"Checkpoint position table has shape {list(table.shape)}; not used (recomputed)."
    for frames in range(1, 9):
        side = math.isqrt(tokens // frames) if tokens % frames == 0 else 0
        if side and frames * side * side == tokens:
            expected = sincos_3d(model.embed_dim, (frames, side, side))
            same = torch.allclose(table.reshape(-1, model.embed_dim)[1:].float(), expected, atol=1e-4)
            if same:
                return (
                    f"Position embeddings: the checkpoint's table (grid {frames}x{side}x{side}) equals geoft's "
                    f"sin-cos table; positions are recomputed for each input grid (nominal {model.nominal_grid})."
                )
    return (
        f"Position embeddings: the checkpoint's table ({tokens} tokens) differs from geoft's sin-cos layout; "
        "it is not used, positions are recomputed for each input grid."
    )


def _select_bands(
    weight: torch.Tensor,
    model: PrithviViT,
    pretrained_bands: Sequence[BandLike],
    report: LoadReport,
    name: str,
) -> torch.Tensor:
    """Cut the checkpoint's patch-embedding kernel ``[D, C_ckpt, t, h, w]`` to the model's bands."""
    current = model.patch_embed.proj.weight.detach()
    if weight.ndim != 5 or weight.shape[:1] + weight.shape[2:] != current.shape[:1] + current.shape[2:]:
        raise mismatch_error(name, report.source, {PATCH_WEIGHT: (tuple(weight.shape), tuple(current.shape))})
    if weight.shape[1] != len(pretrained_bands):
        raise CheckpointError(
            f"{report.source}: {PATCH_WEIGHT} has {weight.shape[1]} input channels but pretrained_bands lists "
            f"{len(pretrained_bands)} ({', '.join(map(band_label, pretrained_bands))}).",
            hint="Pass pretrained_bands=[...] naming the checkpoint's bands in order.",
        )
    model_bands = model.bands
    if model_bands is None:
        if weight.shape[1] != current.shape[1]:
            raise mismatch_error(
                name, report.source, {PATCH_WEIGHT: (tuple(weight.shape), tuple(current.shape))}
            )
        return weight
    if list(model_bands) == list(pretrained_bands):
        return weight
    selected = current.clone().to(weight.dtype)
    copied, fresh = [], []
    for j, band in enumerate(model_bands):
        if band in pretrained_bands:
            i = list(pretrained_bands).index(band)
            selected[:, j] = weight[:, i]
            copied.append(f"{band_label(band)}<-{i}")
        else:
            fresh.append(band_label(band))
    how = f"bands re-cut from checkpoint channels ({', '.join(copied) or 'none'})"
    if fresh:
        how += f"; new band(s) {', '.join(fresh)} keep a fresh Xavier initialisation"
    report.adapted[PATCH_WEIGHT] = how
    return selected
