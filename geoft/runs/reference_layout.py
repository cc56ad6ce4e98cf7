"""Checkpoints trained by the reference (TerraTorch): its state-dict layout translated to geoft's.

The encoders and most layers have the same keys on both sides; where they differ, :data:`RENAMES`
says how (a table of the reference's key patterns and geoft's names, per decoder, neck or head).
Two differences are not names:

* the reference's UPerNet pyramid-pooling branches are conv (no bias) + BatchNorm; geoft's are one
  conv with a bias (BatchNorm on a 1x1 pooled map fails at batch size 1), so the trained BatchNorm
  is folded into the conv: the same function in eval mode (:data:`FOLDS`);
* the reference saves Prithvi's fixed sin-cos position table, which geoft recomputes (a
  non-persistent buffer): keys naming a non-persistent buffer of the model are dropped.

The translation is used only when the checkpoint does not fit the model as it is and fits it
exactly (every key, no more) once translated, so geoft's own checkpoints never change.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

Notice = Callable[[str], None]


@dataclass(frozen=True)
class Rename:
    """The reference's keys matching ``pattern`` are geoft's ``replacement`` (``re.sub`` syntax)."""

    part: str
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]


def _rename(part: str, pattern: str, replacement: str | Callable[[re.Match[str]], str]) -> Rename:
    return Rename(part, re.compile(pattern), replacement)


# Applied in order, each to the result of the one before.
RENAMES: tuple[Rename, ...] = (
    # the reference's auxiliary head is Sequential(decoder, head); then the decoder rules below apply
    _rename("auxiliary heads", r"^(model\.aux_heads\.[^.]+)\.0\.", r"\1.decoder."),
    _rename("auxiliary heads", r"^(model\.aux_heads\.[^.]+)\.1\.", r"\1.head."),
    _rename("FCNDecoder LayerNorm", r"^(.*\.convs\.\d+\.2)\.ln\.", r"\1.norm."),
    # UperNetDecoder(scale_modules=True): the reference's fpn1/fpn2 on the decoder itself
    _rename("UperNetDecoder scale modules", r"^(.*\.decoder)\.(fpn[12])\.", r"\1.scale.\2."),
    _rename("UperNetDecoder PSP bottleneck", r"^(.*\.decoder)\.bottleneck\.", r"\1.psp_bottleneck."),
    # the reference's ConvModule (conv, norm, act) is geoft's ConvBNReLU sequential
    _rename(
        "UperNetDecoder conv modules",
        r"^(.*\.(?:lateral_convs\.\d+|fpn_convs\.\d+|fpn_bottleneck|psp_bottleneck))\.conv\.",
        r"\1.0.",
    ),
    _rename(
        "UperNetDecoder conv modules",
        r"^(.*\.(?:lateral_convs\.\d+|fpn_convs\.\d+|fpn_bottleneck|psp_bottleneck))\.norm\.",
        r"\1.1.",
    ),
    # the reference wraps an smp decoder as SMPDecoderWrapper._smp_decoder; geoft's SMPDecoder as .decoder
    _rename("smp decoder wrapper", r"^(.*\.decoder)\._smp_decoder\.", r"\1.decoder."),
    _rename("neck list", r"^(model\.neck)\.(\d+)\.", r"\1.necks.\2."),
    # LearnedInterpolateToPyramidal (neck or UPerNet scale modules): fpn2 is one ConvTranspose2d
    _rename("LearnedInterpolateToPyramidal fpn2", r"^(.*\.fpn2)\.0\.", r"\1."),
    # SegmentationHead(channel_list): the reference nests (conv, ReLU) blocks, geoft lists them flat
    _rename(
        "SegmentationHead conv blocks",
        r"^(.*\.head\.head\.0)\.(\d+)\.0\.",
        lambda m: f"{m[1]}.{2 * int(m[2])}.",
    ),
)


@dataclass(frozen=True)
class Fold:
    """A conv (no bias) + BatchNorm of the reference that is one conv with a bias in geoft."""

    part: str
    conv: re.Pattern[str]  # the reference's conv weight key; group 1: module prefix, 2: branch
    target: str  # geoft's conv prefix, ``str.format`` with the groups
    eps: float = 1e-5  # torch.nn.BatchNorm2d's default, which the reference uses


FOLDS: tuple[Fold, ...] = (
    Fold(
        "UperNetDecoder pyramid pooling (BatchNorm folded into the conv)",
        re.compile(r"^(.*\.decoder)\.psp_modules\.(\d+)\.1\.conv\.weight$"),
        "{0}.psp.stages.{1}.1",
    ),
)


def _fold(state: dict[str, Tensor], fold: Fold, used: set[str]) -> tuple[dict[str, Tensor], int]:
    out: dict[str, Tensor] = {}
    count = 0
    for key in list(state):
        match = fold.conv.match(key)
        if match is None:
            continue
        norm = key[: -len("conv.weight")] + "norm."
        parts = [norm + p for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
        if not all(p in state for p in parts[:4]):
            continue
        gamma, beta, mean, var = (state[p].float() for p in parts[:4])
        scale = gamma / torch.sqrt(var + fold.eps)
        weight = state[key]
        target = fold.target.format(match[1], match[2])
        out[f"{target}.weight"] = (weight.float() * scale.view(-1, 1, 1, 1)).to(weight.dtype)
        out[f"{target}.bias"] = (beta - mean * scale).to(weight.dtype)
        used.update([key, *(p for p in parts if p in state)])
        count += 1
    return out, count


def _rename_key(key: str, parts: set[str]) -> str:
    for rule in RENAMES:
        new = rule.pattern.sub(rule.replacement, key, count=1)
        if new != key:
            parts.add(rule.part)
            key = new
    return key


def _non_persistent_buffers(model: nn.Module) -> set[str]:
    names: set[str] = set()
    for prefix, module in model.named_modules():
        for name in module._non_persistent_buffers_set:
            names.add(f"{prefix}.{name}" if prefix else name)
    return names


def stderr_notice(message: str) -> None:
    """Where a Lightning hook has no caller to tell: the CLI's ``geoft: ...`` line on stderr."""
    print(f"geoft: {message}", file=sys.stderr)


def trained_by_reference(ckpt_path: str | Path) -> bool:
    """Whether the Lightning checkpoint's hyperparameters name one of the reference's task classes."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    return isinstance(ckpt, Mapping) and _is_reference_checkpoint(ckpt)


def translate_reference_state(
    state: Mapping[str, Tensor], model: nn.Module, notice: Notice | None = None
) -> Mapping[str, Tensor]:
    """``state`` in ``model``'s layout if it is the reference's layout of it; else ``state`` unchanged.

    ``notice`` is told what was translated (nothing when the state fits as it is or not at all).
    """
    wanted = set(model.state_dict())
    if set(state) == wanted:
        return state
    dropped = set(state) & _non_persistent_buffers(model)
    rest = {k: v for k, v in state.items() if k not in dropped}
    parts: set[str] = set()
    renamed = {_rename_key(key, parts): value for key, value in rest.items()}
    used: set[str] = set()
    translated: dict[str, Tensor] = {}
    for fold in FOLDS:
        folded, count = _fold(renamed, fold, used)
        if count:
            parts.add(fold.part)
            translated.update(folded)
    translated.update((key, value) for key, value in renamed.items() if key not in used)
    if set(translated) != wanted:
        return state  # not the reference's layout of this model: the strict load says what differs
    if notice is not None:
        what = sorted(parts) + (
            [f"dropped {', '.join(sorted(dropped))} (a fixed table geoft recomputes)"] if dropped else []
        )
        notice(f"translated the reference's (TerraTorch's) checkpoint layout: {'; '.join(what)}")
    return translated


def _is_reference_checkpoint(checkpoint: Mapping[str, object]) -> bool:
    hparams = checkpoint.get("hyper_parameters")
    class_path = hparams.get("_class_path") if isinstance(hparams, Mapping) else None
    return isinstance(class_path, str) and class_path.startswith("terratorch.")


def adopt_reference_checkpoint(
    task: nn.Module, checkpoint: dict[str, object], fitting: bool, notice: Notice = stderr_notice
) -> None:
    """What ``on_load_checkpoint`` does: a checkpoint trained by the reference resumes and predicts.

    Its weights are translated to ``task``'s layout. Its optimizer and scheduler states are dropped:
    they are lists in the reference's parameter order (the UPerNet fold even removes parameters), so
    they cannot be mapped onto geoft's parameters safely; the config's optimizer starts fresh (an
    empty list makes Lightning restore none, also for the reference's weights-only checkpoints).
    The epoch and step counters continue, as for any ``--ckpt_path`` resume.
    """
    state = checkpoint.get("state_dict")
    if isinstance(state, Mapping):
        checkpoint["state_dict"] = translate_reference_state(state, task, notice)
    if not _is_reference_checkpoint(checkpoint):
        return
    restorable = bool(checkpoint.get("optimizer_states")) or bool(checkpoint.get("lr_schedulers"))
    checkpoint["optimizer_states"], checkpoint["lr_schedulers"] = [], []
    if fitting:
        why = "the reference's optimizer and scheduler states do not map onto geoft's parameters"
        notice(
            f"{'not restoring the optimizer: ' + why if restorable else 'the checkpoint holds no optimizer'};"
            f" the configured optimizer and scheduler start fresh; the epoch and step counters continue"
            f" from the checkpoint's (epoch {checkpoint.get('epoch', 0)}, step {checkpoint.get('global_step', 0)})"
        )


__all__ = [
    "FOLDS",
    "RENAMES",
    "Fold",
    "Rename",
    "adopt_reference_checkpoint",
    "stderr_notice",
    "trained_by_reference",
    "translate_reference_state",
]
