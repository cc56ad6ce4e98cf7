"""Loading Prithvi Swin checkpoints into :class:`~geoft.models.backbones.prithvi_swin_model.PrithviSwin`.

Two layouts exist, both read by the reference:

* the original Swin / SimMIM pre-training layout: ``encoder.patch_embed.proj``,
  ``encoder.layers.<i>.blocks.<j>.attn.qkv`` ..., ``encoder.layers.<i>.downsample`` (merging at the
  end of stage i), one final ``encoder.norm``, plus ``encoder.mask_token`` and ``decoder.*``;
* the reference's own (MMSegmentation) layout, as its models and fine-tuned checkpoints save it:
  ``patch_embed.projection``, ``stages.<i>.blocks.<j>.attn.w_msa.*``, ``ffn.layers.0.0`` / ``ffn.layers.1``,
  ``stages.<i>.downsample`` with its merged channels in unfold order, one ``stages.<i>.norm`` per stage,
  optionally under ``backbone.`` / ``model.encoder.`` and with ``stages_<i>`` names.

Keys are mapped to geoft's names and loaded strictly; what is not part of the encoder is dropped
with its reason, and the patch embedding is re-cut for the requested bands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import get_relative_position_index

from geoft.errors import CheckpointError
from geoft.models.backbones.bands import BandLike, band_label
from geoft.models.backbones.checkpoint import LoadReport, load_exact, mismatch_error, read_state_dict
from geoft.models.backbones.prithvi_swin_model import PrithviSwin

PATCH_WEIGHT = "patch_embed.projection.weight"
_WRAPPERS = ("module.", "model.")


def unfold_to_swin_order(weight: torch.Tensor) -> torch.Tensor:
    """Merged-patch channels from unfold order (c, kh, kw) to Swin's (x0, x1, x2, x3) blocks of C.

    Works on the reduction weight ``[out, 4C]`` and on the norm's ``[4C]``; the index permutation
    [0, 2, 1, 3] is its own inverse, so the same function maps back.
    """
    lead = weight.shape[:-1]
    channels = weight.shape[-1] // 4
    grouped = weight.reshape(*lead, channels, 4)[..., [0, 2, 1, 3]]
    return grouped.transpose(-1, -2).reshape(*lead, 4 * channels)


def swin_to_unfold_order(weight: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`unfold_to_swin_order` (for writing the reference's layout)."""
    lead = weight.shape[:-1]
    channels = weight.shape[-1] // 4
    grouped = weight.reshape(*lead, 4, channels)[..., [0, 2, 1, 3], :]
    return grouped.transpose(-1, -2).reshape(*lead, 4 * channels)


def _strip(state: dict[str, torch.Tensor], removed: str = "") -> tuple[dict[str, torch.Tensor], str]:
    """Remove wrapper prefixes every key shares; return the state and what was removed."""
    for prefix in _WRAPPERS:
        if state and all(k.startswith(prefix) for k in state):
            return _strip({k[len(prefix) :]: v for k, v in state.items()}, removed + prefix)
    return state, removed


def _simmim_key(key: str, last_stage: int) -> str | None:
    """geoft name of an original-Swin encoder key (without ``encoder.``), or None if not mapped."""
    if key.startswith("patch_embed."):
        return key.replace("patch_embed.proj.", "patch_embed.projection.")
    if key in ("norm.weight", "norm.bias"):
        return f"stages.{last_stage}.{key}"
    match = re.match(r"^layers\.(\d+)\.(.+)$", key)
    if not match:
        return None
    stage, rest = int(match.group(1)), match.group(2)
    if rest.startswith("downsample."):
        return f"stages.{stage + 1}.{rest}"
    return f"stages.{stage}.{rest}"


def _mmseg_key(key: str) -> str | None:
    """geoft name of a reference (MMSeg-layout) key, or None if not mapped."""
    key = re.sub(r"^stages_(\d+)\.", r"stages.\1.", key)
    if key.startswith("patch_embed."):
        return key
    match = re.match(r"^stages\.(\d+)\.(.+)$", key)
    if not match:
        return None
    stage, rest = int(match.group(1)), match.group(2)
    if rest.startswith("downsample."):
        return f"stages.{stage + 1}.{rest}"
    rest = rest.replace("attn.w_msa.", "attn.").replace("ffn.layers.0.0.", "mlp.fc1.")
    return f"stages.{stage}.{rest.replace('ffn.layers.1.', 'mlp.fc2.')}"


def load_swin_checkpoint(
    model: PrithviSwin,
    ckpt: str | Path | dict[str, torch.Tensor],
    pretrained_bands: Sequence[BandLike],
    name: str = "PrithviSwin",
    source: str | None = None,
) -> LoadReport:
    """Load a Prithvi Swin checkpoint (either layout) into ``model`` strictly; return the report."""
    if isinstance(ckpt, dict):
        state, label = ckpt, source or "the given state dict"
    else:
        state, label = read_state_dict(ckpt), source or str(ckpt)
    report = LoadReport(source=label)
    state, wrapper = _strip(state)
    own = model.state_dict()
    last = len(model.stages) - 1
    simmim = any(k.startswith(("encoder.layers.", "layers.")) for k in state)
    mapped: dict[str, torch.Tensor] = {}
    for stripped, value in state.items():
        key, inner = wrapper + stripped, stripped
        for prefix in ("encoder.", "backbone."):
            inner = inner.removeprefix(prefix)
        if key.startswith("decoder.") or inner == "mask_token":
            report.dropped[key] = "pre-training decoder / mask token, not part of the encoder"
            continue
        if inner.startswith("head.") or inner.startswith(("neck.", "aux_heads.")):
            report.dropped[key] = "classifier / task head, not part of the encoder"
            continue
        target = _simmim_key(inner, last) if simmim else _mmseg_key(inner)
        if target is None:
            raise CheckpointError(
                f"{label}: key {key!r} belongs to no Prithvi Swin encoder part.",
                hint="Is this a Swin checkpoint (original Swin 'encoder.layers.*' or TerraTorch 'stages.*' keys)?",
            )
        if target.endswith("relative_position_index"):
            _check_index(value, model.window_size, key, label)
            report.dropped[key] = "relative position index, recomputed (same values)"
        elif target.endswith("attn_mask"):
            report.dropped[key] = "shifted-window attention mask, recomputed for each input size"
        elif target in own and ".downsample." in target and not simmim:
            mapped[target] = unfold_to_swin_order(value)
        else:
            mapped[target] = value
    if simmim:
        for i in range(last):
            for part in ("weight", "bias"):
                key = f"stages.{i}.norm.{part}"
                mapped[key] = own[key].clone()
            report.adapted[f"stages.{i}.norm"] = (
                "not in the original Swin layout (it has one final norm): identity LayerNorm, as in the reference"
            )
    _fit_bias_tables(mapped, own, report)
    if PATCH_WEIGHT in mapped:
        mapped[PATCH_WEIGHT] = _select_bands(mapped[PATCH_WEIGHT], model, pretrained_bands, report, name)
    load_exact(model, mapped, report, name)
    model.load_report = report
    report.log()
    return report


def _check_index(index: torch.Tensor, window: int, key: str, label: str) -> None:
    if index.shape == (window * window, window * window) and not torch.equal(
        index.long(), get_relative_position_index(window, window)
    ):
        raise CheckpointError(f"{label}: {key} differs from the standard Swin relative position index.")


def _fit_bias_tables(
    mapped: dict[str, torch.Tensor], own: dict[str, torch.Tensor], report: LoadReport
) -> None:
    """Resize relative position bias tables of another window size (bicubic, as the reference)."""
    for key, table in mapped.items():
        if (
            not key.endswith("relative_position_bias_table")
            or key not in own
            or table.shape == own[key].shape
        ):
            continue
        (old, heads), (new, own_heads) = table.shape, own[key].shape
        if heads != own_heads:
            continue  # reported as a shape mismatch by load_exact
        side_old, side_new = round(old**0.5), round(new**0.5)
        grid = table.T.reshape(1, heads, side_old, side_old).float()
        resized = F.interpolate(grid, size=(side_new, side_new), mode="bicubic", align_corners=False)
        mapped[key] = resized.reshape(heads, new).T.contiguous().to(table.dtype)
        report.adapted[key] = f"bias table {side_old}x{side_old} -> {side_new}x{side_new} (other window size)"


def _select_bands(
    weight: torch.Tensor,
    model: PrithviSwin,
    pretrained_bands: Sequence[BandLike],
    report: LoadReport,
    name: str,
) -> torch.Tensor:
    """Cut the checkpoint's stem kernel ``[D, C_ckpt, 4, 4]`` to the model's bands."""
    current = model.patch_embed.projection.weight.detach()
    if weight.ndim != 4 or weight.shape[0] != current.shape[0] or weight.shape[2:] != current.shape[2:]:
        raise mismatch_error(name, report.source, {PATCH_WEIGHT: (tuple(weight.shape), tuple(current.shape))})
    if weight.shape[1] != len(pretrained_bands):
        raise CheckpointError(
            f"{report.source}: {PATCH_WEIGHT} has {weight.shape[1]} input channels but pretrained_bands lists "
            f"{len(pretrained_bands)} ({', '.join(map(band_label, pretrained_bands))}).",
            hint="Pass pretrained_bands=[...] naming the checkpoint's bands in order.",
        )
    bands = model.bands
    if bands is None or list(bands) == list(pretrained_bands):
        if weight.shape[1] != current.shape[1]:
            raise mismatch_error(
                name, report.source, {PATCH_WEIGHT: (tuple(weight.shape), tuple(current.shape))}
            )
        return weight
    selected = current.clone().to(weight.dtype)
    copied, fresh = [], []
    for j, band in enumerate(bands):
        if band in pretrained_bands:
            i = list(pretrained_bands).index(band)
            selected[:, j] = weight[:, i]
            copied.append(f"{band_label(band)}<-{i}")
        else:
            fresh.append(band_label(band))
    how = f"bands re-cut from checkpoint channels ({', '.join(copied) or 'none'})"
    if fresh:
        how += f"; new band(s) {', '.join(fresh)} keep a fresh initialisation"
    report.adapted[PATCH_WEIGHT] = how
    return selected
