"""Checkpoints trained by the reference (TerraTorch): its state-dict layout translated to geoft's.

The encoders and most layers have the same keys on both sides; where they differ, :data:`RENAMES`
says how (a table of the reference's key patterns and geoft's names, per decoder, neck or head).
Two differences are not names:

* the reference's UPerNet pyramid-pooling branches and its ASPP heads' image pooling are conv (no
  bias) + BatchNorm; geoft's are one conv with a bias (BatchNorm on a 1x1 pooled map fails at batch
  size 1), so the trained BatchNorm is folded into the conv: the same function in eval mode
  (:data:`FOLDS`);
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

from geoft.errors import CheckpointError

Notice = Callable[[str], None]


@dataclass(frozen=True)
class Rename:
    """The reference's keys matching ``pattern`` are geoft's ``replacement`` (``re.sub`` syntax).

    With ``when``, only where the module the match's group 1 names also holds keys starting with
    ``when`` (two decoders of the reference name a part alike: UPerNet's and ASPP's ``bottleneck``).
    """

    part: str
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]
    when: str | None = None


def _rename(
    part: str, pattern: str, replacement: str | Callable[[re.Match[str]], str], when: str | None = None
) -> Rename:
    return Rename(part, re.compile(pattern), replacement, when)


# Applied in order, each to the whole state the one before left.
RENAMES: tuple[Rename, ...] = (
    # the reference's auxiliary head is Sequential(decoder, head); then the decoder rules below apply
    _rename("auxiliary heads", r"^(model\.aux_heads\.[^.]+)\.0\.", r"\1.decoder."),
    _rename("auxiliary heads", r"^(model\.aux_heads\.[^.]+)\.1\.", r"\1.head."),
    _rename("FCNDecoder LayerNorm", r"^(.*\.convs\.\d+\.2)\.ln\.", r"\1.norm."),
    # UperNetDecoder(scale_modules=True): the reference's fpn1/fpn2 on the decoder itself
    _rename("UperNetDecoder scale modules", r"^(.*\.decoder)\.(fpn[12])\.", r"\1.scale.\2."),
    # ASPP heads: ConvModule (conv, norm, act) -> ConvBNReLU; before the branches' rename, which `when` reads
    _rename(
        "ASPP heads conv modules", r"^(.*\.decoder)\.bottleneck\.conv\.", r"\1.bottleneck.0.", "aspp_modules."
    ),
    _rename(
        "ASPP heads conv modules", r"^(.*\.decoder)\.bottleneck\.norm\.", r"\1.bottleneck.1.", "aspp_modules."
    ),
    _rename(
        "ASPP heads conv modules",
        r"^(.*\.decoder)\.aspp_modules\.model_sequence\.(\d+)\.conv\.",
        r"\1.branches.\2.0.",
    ),
    _rename(
        "ASPP heads conv modules",
        r"^(.*\.decoder)\.aspp_modules\.model_sequence\.(\d+)\.norm\.",
        r"\1.branches.\2.1.",
    ),
    _rename(
        "UperNetDecoder PSP bottleneck",
        r"^(.*\.decoder)\.bottleneck\.",
        r"\1.psp_bottleneck.",
        "psp_modules.",
    ),
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


# the reference's layouts of modules geoft has no equivalent of: key pattern -> what it is
NO_EQUIVALENT: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^(.*\.decoder|model\.aux_heads\.[^.]+\.0)\.hidden_layer\.weight$"),
        "the reference's MLPDecoder (`hidden_layer`: one Linear over the features concatenated at one "
        "size), which geoft does not have: geoft's MLPDecoder is SegFormer-style (a 1x1 projection per "
        "feature, resized and fused by a conv + BatchNorm), with other weights",
    ),
)


@dataclass(frozen=True)
class Fold:
    """A conv (no bias) + BatchNorm of the reference that is one conv with a bias in geoft."""

    part: str
    conv: re.Pattern[str]  # the reference's conv weight key; its groups name the module (and branch)
    target: str  # geoft's conv prefix, ``str.format`` with the groups
    eps: float = 1e-5  # torch.nn.BatchNorm2d's default, which the reference uses


FOLDS: tuple[Fold, ...] = (
    Fold(
        "UperNetDecoder pyramid pooling (BatchNorm folded into the conv)",
        re.compile(r"^(.*\.decoder)\.psp_modules\.(\d+)\.1\.conv\.weight$"),
        "{0}.psp.stages.{1}.1",
    ),
    Fold(
        "ASPP heads image pooling (BatchNorm folded into the conv)",
        re.compile(r"^(.*\.decoder)\.image_pool\.1\.conv\.weight$"),
        "{0}.image_pool.1",
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
        target = fold.target.format(*match.groups())
        out[f"{target}.weight"] = (weight.float() * scale.view(-1, 1, 1, 1)).to(weight.dtype)
        out[f"{target}.bias"] = (beta - mean * scale).to(weight.dtype)
        used.update([key, *(p for p in parts if p in state)])
        count += 1
    return out, count


def _rename_all(state: dict[str, Tensor], parts: set[str]) -> dict[str, Tensor]:
    for rule in RENAMES:
        holds: dict[str, bool] = {}  # module prefix -> whether it has keys starting with rule.when
        out: dict[str, Tensor] = {}
        for key, value in state.items():
            match = rule.pattern.match(key)
            if match is not None and rule.when is not None:
                prefix = f"{match[1]}.{rule.when}"
                if prefix not in holds:
                    holds[prefix] = any(k.startswith(prefix) for k in state)
                match = match if holds[prefix] else None
            if match is not None:
                parts.add(rule.part)
                key = rule.pattern.sub(rule.replacement, key, count=1)
            out[key] = value
        state = out
    return state


def _regression_head_names(module: nn.Module, ref: str, ours: str) -> dict[str, str]:
    """The reference's key prefix -> geoft's, for one of geoft's ``RegressionHead``.

    The reference's ``head`` is ``Sequential(*pre_layers, dropout, final conv)``: its learned
    upsamplings nested in one ``Sequential`` (each ``conv`` + ``bn``), then its conv blocks nested in
    another (each conv, BatchNorm, ReLU). geoft's lists the upsamplings flat, then the blocks flat,
    then dropout and the conv, at fixed places.
    """
    from geoft.models.heads import _PixelShuffleUp

    layers = list(module.head.children())
    ups = sum(isinstance(layer, _PixelShuffleUp) for layer in layers)
    blocks = layers[ups]
    convs = [i for i, layer in enumerate(blocks.children()) if isinstance(layer, nn.Conv2d)]
    names: dict[str, str] = {}
    for k in range(ups):
        names[f"{ref}.head.0.{k}.conv."] = f"{ours}.head.{k}.0."
        names[f"{ref}.head.0.{k}.bn."] = f"{ours}.head.{k}.2."
    at = 1 if ups else 0  # the reference's index of the blocks' Sequential
    for i, place in enumerate(convs):
        names[f"{ref}.head.{at}.{i}.0."] = f"{ours}.head.{ups}.{place}."
        names[f"{ref}.head.{at}.{i}.1."] = f"{ours}.head.{ups}.{place + 1}."
    final = at + (1 if convs else 0) + 1
    names[f"{ref}.head.{final}."] = f"{ours}.head.{ups + 2}."
    return names


def _translate_regression_heads(
    state: dict[str, Tensor], model: nn.Module, parts: set[str]
) -> dict[str, Tensor]:
    """The reference's ``RegressionHead`` layout of every geoft ``RegressionHead`` in ``model``."""
    from geoft.models.heads import RegressionHead

    names: dict[str, str] = {}
    for path, module in model.named_modules():
        if isinstance(module, RegressionHead):
            # the reference's auxiliary head is Sequential(decoder, head): its head is `.1`
            aux = re.match(r"^(.*\.aux_heads\.[^.]+)\.head$", path)
            names.update(_regression_head_names(module, f"{aux[1]}.1" if aux else path, path))
    if not names:
        return state
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        prefix = next((p for p in names if key.startswith(p) and "." not in key[len(p) :]), None)
        if prefix is not None:
            parts.add("RegressionHead layers")
            key = names[prefix] + key[len(prefix) :]
        out[key] = value
    return out


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
    renamed = _rename_all(_translate_regression_heads(rest, model, parts), parts)
    used: set[str] = set()
    translated: dict[str, Tensor] = {}
    for fold in FOLDS:
        folded, count = _fold(renamed, fold, used)
        if count:
            parts.add(fold.part)
            translated.update(folded)
    translated.update((key, value) for key, value in renamed.items() if key not in used)
    if set(translated) != wanted:
        _refuse_no_equivalent(state, wanted)
        return state  # not the reference's layout of this model: the strict load says what differs
    if notice is not None:
        what = sorted(parts) + (
            [f"dropped {', '.join(sorted(dropped))} (a fixed table geoft recomputes)"] if dropped else []
        )
        notice(f"translated the reference's (TerraTorch's) checkpoint layout: {'; '.join(what)}")
    return translated


def _refuse_no_equivalent(state: Mapping[str, Tensor], wanted: set[str]) -> None:
    for pattern, what in NO_EQUIVALENT:
        key = next((k for k in state if pattern.match(k) and k not in wanted), None)
        if key is not None:
            raise CheckpointError(
                f"the checkpoint holds {what} ({key})",
                hint="train that decoder again in geoft (another decoder, or geoft's MLPDecoder); the "
                "checkpoint's model.encoder.* weights fit geoft's encoder of the same name",
            )


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
    "NO_EQUIVALENT",
    "RENAMES",
    "Fold",
    "Rename",
    "adopt_reference_checkpoint",
    "stderr_notice",
    "trained_by_reference",
    "translate_reference_state",
]
