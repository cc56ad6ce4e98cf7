"""The decoder of a published Prithvi-EO MAE checkpoint, loaded to continue its pre-training.

Published files hold the whole MAE: ``decoder.*`` keys beside ``encoder.*`` (Prithvi-EO-2.0), or flat
``decoder_*`` keys and ``mask_token`` beside the encoder's (Prithvi-EO-1.0). :class:`MAEDecoder` uses the
published names, so the keys load as they are, except the fixed position table (geoft recomputes it for
each grid) and the decoder's time and location encodings (geoft's decoder has none).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from geoft.models.backbones.checkpoint import LoadReport, load_exact, read_state_dict
from geoft.models.mae import MAEDecoder, MaskedAutoencoder

log = logging.getLogger(__name__)

_WRAPPERS = ("module", "model", "net")
_FIXED = "decoder_pos_embed"
_COORDINATES = ("temporal_embed_dec", "location_embed_dec")


def published_decoder_part(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The decoder's keys of a published MAE state dict, named as in :class:`MAEDecoder`."""
    heads = {k.split(".", 1)[0] for k in state}
    while len(heads) == 1 and next(iter(heads)) in _WRAPPERS:
        state = {k.split(".", 1)[1]: v for k, v in state.items()}
        heads = {k.split(".", 1)[0] for k in state}
    part: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("decoder."):
            part[key[len("decoder.") :]] = value
        elif key.startswith("decoder_") or key == "mask_token":
            part[key] = value
    return part


def _shape_of(part: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    width = int(part["decoder_embed.weight"].shape[0])
    depth = len({k.split(".")[1] for k in part if k.startswith("decoder_blocks.")})
    return width, depth


def load_published_decoder(
    decoder: MAEDecoder,
    state: Mapping[str, torch.Tensor],
    source: str,
    model_bands: Sequence[str] | None,
    checkpoint_bands: Sequence[str],
) -> LoadReport:
    """Load the published decoder of ``state`` into ``decoder`` strictly; return the report.

    The pixel prediction layer is loaded only when the model reads the checkpoint's bands in the
    checkpoint's order (it predicts those bands); otherwise it starts fresh and the report says why.
    A decoder of another width or depth than the checkpoint's starts fresh, with a warning that gives
    the sizes that would continue it.
    """
    report = LoadReport(source=source)
    part = published_decoder_part(state)
    if "decoder_embed.weight" not in part:
        report.notes.append("the checkpoint holds no MAE decoder; the decoder starts from random weights")
        report.log()
        return report
    width, depth = _shape_of(part)
    own_depth = len(decoder.decoder_blocks)
    if (width, depth) != (decoder.dim, own_depth) or part["decoder_embed.weight"].shape[1] != (
        decoder.decoder_embed.weight.shape[1]
    ):
        log.warning(
            "The decoder (width %d, depth %d) differs from the MAE decoder of %s (width %d, depth %d); it "
            "starts from random weights. Set model_args decoder_embed_dim: %d and decoder_depth: %d (and "
            "decoder_num_heads to the checkpoint's) to continue the published decoder.",
            decoder.dim,
            own_depth,
            source,
            width,
            depth,
            width,
            depth,
        )
        report.notes.append("decoder sizes differ from the checkpoint's; not loaded")
        return report
    for key in list(part):
        if key == _FIXED:
            report.dropped[key] = "fixed sin-cos position table, recomputed for each input grid"
            del part[key]
        elif key.startswith(_COORDINATES):
            report.dropped[key] = "decoder time/location encoding; geoft's decoder has none"
            del part[key]
    same_bands = model_bands is not None and list(model_bands) == list(checkpoint_bands)
    if not same_bands:
        own = decoder.state_dict()
        for key in ("decoder_pred.weight", "decoder_pred.bias"):
            report.dropped[key] = "predicts the checkpoint's bands, not the model's; starts fresh"
            part[key] = own[key]
    load_exact(decoder, part, report, "MAE decoder")
    report.loaded = [k for k in report.loaded if k not in report.dropped]
    report.log()
    return report


def continue_published_decoder(
    model: MaskedAutoencoder, variant: str, encoder_args: Mapping[str, Any]
) -> LoadReport | None:
    """Load the decoder of the checkpoint the encoder was loaded from (``ckpt_path``, else the
    published weights when ``pretrained``); None when the encoder started from random weights."""
    from geoft.models.backbones.bands import normalize_bands
    from geoft.models.backbones.prithvi import PRITHVI_VARIANTS
    from geoft.models.backbones.prithvi_weights import PUBLISHED_WEIGHTS, download_published

    ckpt_path = encoder_args.get("ckpt_path")
    if ckpt_path is None and not encoder_args.get("pretrained"):
        return None
    if ckpt_path is not None:
        state, source = read_state_dict(ckpt_path), str(ckpt_path)
    else:
        state, source = read_state_dict(download_published(variant)), PUBLISHED_WEIGHTS[variant].url
    given = encoder_args.get("pretrained_bands")
    checkpoint_bands = (
        normalize_bands(given, "pretrained_bands") if given else list(PRITHVI_VARIANTS[variant].bands)
    )
    model_bands = getattr(model.encoder, "bands", None)
    return load_published_decoder(model.decoder, state, source, model_bands, checkpoint_bands)


__all__ = ["continue_published_decoder", "load_published_decoder", "published_decoder_part"]
