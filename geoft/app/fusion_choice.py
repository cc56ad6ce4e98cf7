"""Several modalities and dates on the Model page: which backbones fit the data, and the
``GenericMultiModalDataModule`` and ``model_args`` parts of the config for each way of fusing them.

- ``concat_bands``: one single-modal backbone on the modalities' bands side by side (channels = sum);
- ``late_fusion``: one encoder per modality, features merged (``mean`` or ``concat``);
- ``terramind``: TerraMind reading the modality dict, where every modality is one it knows.

Dates: ``temporal`` wraps the backbone in ``TemporalWrapper`` (pooling over the dates), ``frames`` gives a
Prithvi ``num_frames``; ``use_metadata`` hands dates and locations to the backbones that read them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from geoft.errors import ConfigError
from geoft.models.backbones.terramind_modalities import canonical_name

FUSIONS: dict[str, str] = {
    "concat_bands": "Bands side by side, one single-modal backbone (concat_bands)",
    "late_fusion": "One encoder per modality, features merged (late_fusion)",
    "terramind": "TerraMind on the modality dict",
}
MERGE_METHODS = ("mean", "concat")
TEMPORAL_MODES: dict[str, str] = {
    "temporal": "TemporalWrapper: the backbone on each date, features pooled over time",
    "frames": "Prithvi with frames: the dates as its time axis (num_frames)",
}
TEMPORAL_POOLING = ("mean", "max", "diff", "concat")


@dataclass
class FusionChoice:
    """How the Model page fuses modalities and dates."""

    method: str = "concat_bands"
    merge_method: str = "mean"
    # late fusion: the backbone of each modality (the page's backbone for those not named)
    encoders: dict[str, str] = field(default_factory=dict)
    dates: int = 1  # dates per sample (1: single-date)
    temporal_mode: str = "temporal"
    temporal_pooling: str = "mean"
    use_metadata: bool = False


def is_terramind(backbone: str) -> bool:
    return backbone.startswith("terramind_")


def takes_frames(backbone: str) -> bool:
    """Prithvi ViTs read a time axis themselves (``num_frames``); Prithvi Swin does not."""
    return backbone.startswith("prithvi_") and "swin" not in backbone


def takes_metadata(backbone: str) -> bool:
    """Backbones that add time and location encodings (the Prithvi ``_tl`` variants)."""
    return backbone.endswith("_tl")


def terramind_misfits(modalities: list[str]) -> list[str]:
    """Modality names TerraMind does not know (rename them on the Data page: S2L2A, S2L1C, S1GRD, DEM...)."""
    out = []
    for name in modalities:
        try:
            known = canonical_name(name)
        except ConfigError:
            known = None
        if known is None:
            out.append(name)
    return out


def why_not(backbone: str, method: str, modalities: list[str], dates: int) -> str | None:
    """Why ``backbone`` does not fit ``method`` on this data (None: it fits)."""
    if backbone == "late_fusion":
        return "late_fusion is the fusion itself: choose 'One encoder per modality' and the encoders"
    if method == "terramind":
        if not is_terramind(backbone):
            return "the TerraMind fusion needs a terramind_* backbone"
        if dates > 1:
            return "TerraMind reads one date per modality; these files hold several dates"
        unknown = terramind_misfits(modalities)
        if unknown:
            return (
                f"TerraMind does not know the modalities {', '.join(unknown)}: name them S2L2A, S2L1C, "
                "S2RGB, S1GRD, S1RTC or DEM on the Data page"
            )
        return None
    if is_terramind(backbone):
        return "TerraMind takes the modality dict itself: choose the TerraMind fusion"
    return None


def fitting(
    backbones: list[str], method: str, modalities: list[str], dates: int
) -> tuple[list[str], dict[str, str]]:
    """The backbones that fit, and why each of the others does not."""
    kept, refused = [], {}
    for name in backbones:
        reason = why_not(name, method, modalities, dates)
        if reason is None:
            kept.append(name)
        else:
            refused[name] = reason
    return kept, refused


def _band_spec(backbone: str, bands: list[str], band_arg: str) -> dict[str, Any]:
    return {"bands": list(bands)} if band_arg == "bands" else {"in_chans": len(bands)}


def _temporal_args(backbone: str, fusion: FusionChoice) -> dict[str, Any]:
    if fusion.dates <= 1:
        return {}
    if fusion.temporal_mode == "frames":
        if not takes_frames(backbone):
            raise ConfigError(
                f"{backbone} has no time axis (num_frames)",
                hint="use the TemporalWrapper over the dates instead",
            )
        return {"num_frames": fusion.dates}
    args: dict[str, Any] = {"use_temporal": True, "temporal_pooling": fusion.temporal_pooling}
    if fusion.temporal_pooling == "concat":
        args["temporal_n_timestamps"] = fusion.dates
    if fusion.temporal_pooling == "diff" and fusion.dates != 2:
        raise ConfigError(
            f"pooling 'diff' subtracts the second date from the first; the files hold {fusion.dates} dates",
            hint="choose mean, max or concat, or keep two dates per sample",
        )
    return args


def fused_backbone_args(
    backbone: str,
    band_args: dict[str, str],
    bands: dict[str, list[str]],
    pretrained: bool,
    extra: dict[str, Any],
    fusion: FusionChoice,
) -> dict[str, Any]:
    """The ``backbone*`` part of ``model_args`` for the fusion (``band_args``: per backbone name,
    ``bands`` or ``in_chans``; ``extra``: the page's further ``backbone_*`` arguments, e.g. ``ckpt_path``)."""
    reason = (
        why_not(backbone, fusion.method, list(bands), fusion.dates)
        if fusion.method != "late_fusion"
        else None
    )
    if reason:
        raise ConfigError(f"{backbone}: {reason}")
    if fusion.method == "concat_bands":
        concatenated = [b for m in bands for b in bands[m]]
        spec = _band_spec(backbone, concatenated, band_args.get(backbone, "in_chans"))
        spec.update(_temporal_args(backbone, fusion))
        own = {"backbone": backbone, "pretrained": pretrained, **spec, **extra}
    elif fusion.method == "terramind":
        own = {
            "backbone": backbone,
            "pretrained": pretrained,
            "modalities": list(bands),
            "bands": {m: list(b) for m, b in bands.items()},
            **extra,
        }
    elif fusion.method == "late_fusion":
        if fusion.merge_method not in MERGE_METHODS:
            raise ConfigError(f"merge_method must be one of {', '.join(MERGE_METHODS)}")
        if fusion.dates > 1 and fusion.temporal_mode != "frames":
            raise ConfigError(
                "late fusion reads the dates through each encoder's time axis",
                hint="choose 'Prithvi with frames' for the dates, or concatenate the bands",
            )
        encoders = {}
        for modality, modality_bands in bands.items():
            name = fusion.encoders.get(modality) or backbone
            reason = why_not(name, "concat_bands", [modality], fusion.dates)
            if reason:
                raise ConfigError(f"encoder of {modality}, {name}: {reason}")
            spec = {"backbone": name, **_band_spec(name, modality_bands, band_args.get(name, "in_chans"))}
            spec.update(_temporal_args(name, fusion))
            spec["pretrained"] = pretrained
            encoders[modality] = {**spec, **copy.deepcopy(extra)}
        own = {"backbone": "late_fusion", "encoders": encoders, "merge_method": fusion.merge_method}
    else:
        raise ConfigError(f"unknown fusion {fusion.method!r}", hint=f"choose one of {', '.join(FUSIONS)}")
    out = {"backbone": own.pop("backbone")}
    if "pretrained" in own:
        out["backbone_pretrained"] = own.pop("pretrained")
    out.update({f"backbone_{k}": v for k, v in own.items()})
    return out


def multimodal_data_args(
    paths: dict[str, Any],
    dataset_bands: dict[str, list[str]],
    bands: dict[str, list[str]],
    statistics: dict[str, dict[str, list[float]]] | None,
    fusion: FusionChoice,
) -> dict[str, Any]:
    """``GenericMultiModalDataModule`` arguments beyond the paths: bands, statistics, concatenation, dates."""
    args: dict[str, Any] = {
        **copy.deepcopy(paths),
        "dataset_bands": {m: list(b) for m, b in dataset_bands.items()},
    }
    for modality, chosen in bands.items():
        missing = [b for b in chosen if b not in dataset_bands.get(modality, [])]
        if missing:
            raise ConfigError(f"{modality}: input bands {', '.join(missing)} are not bands of its files")
        if not chosen:
            raise ConfigError(f"choose at least one band of {modality}")
    if any(list(bands[m]) != list(dataset_bands[m]) for m in bands):
        args["output_bands"] = {m: list(b) for m, b in bands.items()}
    if fusion.method == "concat_bands":
        args["concat_bands"] = True
    if fusion.use_metadata:
        args["use_metadata"] = True
    if statistics and all(m in statistics for m in bands):
        means, stds = {}, {}
        for m, chosen in bands.items():
            index = [dataset_bands[m].index(b) for b in chosen]
            means[m] = [statistics[m]["means"][i] for i in index]
            stds[m] = [statistics[m]["stds"][i] for i in index]
        args["means"], args["stds"] = means, stds
    return args
