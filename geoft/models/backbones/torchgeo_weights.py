"""torchgeo weight enums: resolving members, their published bands, fetching their files, band selection.

Every torchgeo-based backbone names its weights by a torchgeo ``WeightsEnum`` member. The member's
``meta["bands"]`` uses sensor codes (``"B04"``, ``"SR_B5"``, ``"VV"``) whose meaning depends on the
sensor (Landsat 8 ``B5`` is near infrared, Sentinel-2 ``B5`` a red edge), so each member's codes are
read through the table of its sensor and become geoft band names. The first convolution / patch
embedding of the published file is then cut down to the bands a user asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import torch
from torch import nn

from geoft.errors import ConfigError
from geoft.models.backbones.bands import BandLike, band_label, normalize_band, normalize_bands
from geoft.models.backbones.checkpoint import LoadReport, load_exact, read_state_dict, strip_prefix
from geoft.models.backbones.downloads import url_download

_SENTINEL2 = {
    "B1": "COASTAL_AEROSOL",
    "B2": "BLUE",
    "B3": "GREEN",
    "B4": "RED",
    "B5": "RED_EDGE_1",
    "B6": "RED_EDGE_2",
    "B7": "RED_EDGE_3",
    "B8": "NIR_BROAD",
    "B8A": "NIR_NARROW",
    "B9": "WATER_VAPOR",
    "B10": "CIRRUS",
    "B11": "SWIR_1",
    "B12": "SWIR_2",
}
# Landsat 8/9 OLI-TIRS (SSL4EO-L "OLI", Satlas "LANDSAT").
_LANDSAT_OLI = {
    "B1": "COASTAL_AEROSOL",
    "B2": "BLUE",
    "B3": "GREEN",
    "B4": "RED",
    "B5": "NIR_NARROW",
    "B6": "SWIR_1",
    "B7": "SWIR_2",
    "B8": "PANCHROMATIC",
    "B9": "CIRRUS",
    "B10": "THERMAL_INFRARED_1",
    "B11": "THERMAL_INFRARED_2",
}
# Landsat 4/5 TM and Landsat 7 ETM+ share bands 1-5 and 7; ETM+ has two gains of band 6 and a
# panchromatic band 8.
_LANDSAT_TM = {
    "B1": "BLUE",
    "B2": "GREEN",
    "B3": "RED",
    "B4": "NIR_NARROW",
    "B5": "SWIR_1",
    "B6": "THERMAL_INFRARED_1",
    "B6_VCID_1": "THERMAL_INFRARED_1",
    "B6_VCID_2": "THERMAL_INFRARED_1_HIGH_GAIN",
    "B7": "SWIR_2",
    "B8": "PANCHROMATIC",
}
_RGB = {"R": "RED", "G": "GREEN", "B": "BLUE"}
_SAR = {"VV": "VV", "VH": "VH", "HH": "HH", "HV": "HV"}

#: Sensor code tables, chosen by the weight member's name (first match wins).
_SENSOR_TABLES: tuple[tuple[str, dict[str, str]], ...] = (
    ("LANDSAT_TM", _LANDSAT_TM),
    ("LANDSAT_ETM", _LANDSAT_TM),
    ("LANDSAT", _LANDSAT_OLI),
    ("SENTINEL1", _SAR),
    ("NAIP", _RGB),
    ("", {**_SENTINEL2, **_SAR, **_RGB}),
)
#: Weights whose enum states no bands: what they were trained on.
_UNSTATED_BANDS = {"FMOW_RGB_GASSL": ("RED", "GREEN", "BLUE"), "FMOW_RGB": ("RED", "GREEN", "BLUE")}


def _code_key(code: str) -> str:
    key = code.strip().upper().removeprefix("SR_")
    if key.startswith("B") and key[1:2] == "0":  # B01 -> B1, B8A stays
        key = "B" + key[2:]
    return key


def published_band_codes(member: Enum) -> tuple[str, ...]:
    """The band codes of ``member`` as torchgeo states them (``meta["bands"]``)."""
    meta = member.meta  # type: ignore[attr-defined]
    if "bands" in meta:
        return tuple(meta["bands"])
    return _UNSTATED_BANDS.get(member.name, ())


def published_bands(member: Enum) -> list[BandLike]:
    """The geoft band names of the bands ``member`` was trained on, in the file's channel order."""
    table = next(t for prefix, t in _SENSOR_TABLES if prefix in member.name)
    out: list[BandLike] = []
    for code in published_band_codes(member):
        name = table.get(_code_key(code), code)
        out.append(normalize_band(name))
    return out


def resolve_member(weights: str | Enum, enum_classes: Sequence[type[Enum]], what: str) -> Enum:
    """The member named by ``weights`` (``"Cls.MEMBER"``, ``"MEMBER"`` or the member), of one of ``enum_classes``."""
    import torchgeo.models

    names = ", ".join(f"{c.__name__}.{m}" for c in enum_classes for m in c.__members__)
    if isinstance(weights, Enum):
        member = weights
    elif isinstance(weights, str):
        cls_name, _, member_name = weights.rpartition(".")
        owners = [getattr(torchgeo.models, cls_name, None)] if cls_name else list(enum_classes)
        found = [o[member_name] for o in owners if isinstance(o, type) and member_name in o.__members__]
        if not found:
            raise ConfigError(
                f"weights={weights!r}: {cls_name or enum_classes[0].__name__} has no member {member_name!r}.",
                hint=f"{what} takes: {names}",
            )
        member = found[0]
    else:
        raise ConfigError(f"weights must name a torchgeo weights enum member, got {weights!r}")
    if type(member) not in enum_classes:
        raise ConfigError(
            f"weights {member} are for {member.meta.get('model')!r}, not {what}.",  # type: ignore[attr-defined]
            hint=f"{what} takes: {names}",
        )
    return member


def fetch_enum_file(member: Enum) -> Path:
    """The published file of ``member`` (torch hub cache, else downloaded; offline: OfflineError)."""
    return url_download(member.url, what=f"torchgeo weights {member}")  # type: ignore[attr-defined]


def weights_state(
    member: Enum | None, ckpt_path: str | Path | None, pretrained: bool, name: str
) -> tuple[dict[str, torch.Tensor], str] | None:
    """The state dict to load and how to name it: ``ckpt_path`` if given, else the enum's file when
    ``pretrained``; None for random weights."""
    if ckpt_path is not None:
        return read_state_dict(ckpt_path), str(ckpt_path)
    if not pretrained:
        return None
    if member is None:
        raise ConfigError(f"{name}: pretrained=True needs weights=... or ckpt_path=...")
    path = fetch_enum_file(member)
    return read_state_dict(path), f"{member} ({member.url})"  # type: ignore[attr-defined]


def requested_bands(
    bands: Sequence[BandLike] | None, model_bands: Sequence[BandLike] | None, published: Sequence[BandLike]
) -> list[BandLike]:
    """The model's input bands: ``bands`` (or TerraTorch's ``model_bands``), default the published ones.

    A published sensor code (``"B04"``) is accepted for the band it stands for.
    """
    if bands is not None and model_bands is not None:
        raise ConfigError("give bands or model_bands (TerraTorch's name for it), not both")
    chosen = bands if bands is not None else model_bands
    if chosen is None:
        if not published:
            raise ConfigError("these weights state no bands; pass bands=[...] (band names, in input order)")
        return list(published)
    return normalize_bands(list(chosen))


def codes_to_bands(bands: list[BandLike], member: Enum | None) -> list[BandLike]:
    """Replace published sensor codes in ``bands`` by the geoft band they stand for."""
    if member is None:
        return bands
    by_code = {
        _code_key(c): b for c, b in zip(published_band_codes(member), published_bands(member), strict=True)
    }
    return [by_code.get(_code_key(b), b) if isinstance(b, str) else b for b in bands]


def select_band_channels(
    published_weight: torch.Tensor,
    published: Sequence[BandLike],
    requested: Sequence[BandLike],
    fresh_weight: torch.Tensor,
    key: str,
    report: LoadReport,
    channel_dim: int = 1,
) -> torch.Tensor:
    """``fresh_weight`` (the model's own initialisation) with the channels of ``published_weight`` copied
    in for every requested band that was published; records what happened in ``report.adapted``."""
    if published_weight.shape[channel_dim] != len(published):
        raise ConfigError(
            f"{key} has {published_weight.shape[channel_dim]} input channels but the weights list "
            f"{len(published)} bands ({', '.join(map(band_label, published))})",
            hint="is ckpt_path a file of other weights than weights=...?",
        )
    if list(requested) == list(published):
        return published_weight
    out = fresh_weight.detach().clone()
    new = []
    for i, band in enumerate(requested):
        if band in published:
            src = published_weight.select(channel_dim, list(published).index(band))
            out.select(channel_dim, i).copy_(src)
        else:
            new.append(band_label(band))
    kept = [band_label(b) for b in requested if b in published]
    how = f"input bands {', '.join(kept) or 'none'} taken from the published bands"
    if new:
        how += f"; {', '.join(new)} initialised new (not in the published bands)"
    report.adapted[key] = how
    return out


def load_published(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    report: LoadReport,
    name: str,
    drop: dict[str, str],
    blocks_kept: int | None = None,
) -> LoadReport:
    """Load ``state`` strictly into ``model`` after dropping the keys that start with a prefix of
    ``drop`` (prefix -> reason, e.g. ``{"head.": "classifier head"}``) that the model does not have,
    and, with ``blocks_kept``, the transformer blocks ``blocks.<i>.`` beyond that depth."""
    own = model.state_dict()
    state = strip_prefix(state, set(own))
    kept: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        reason = next((r for p, r in drop.items() if key.startswith(p)), None)
        parts = key.split(".")
        if (
            blocks_kept is not None
            and parts[0] == "blocks"
            and parts[1].isdigit()
            and int(parts[1]) >= blocks_kept
        ):
            reason = f"block beyond depth={blocks_kept}"
        if reason is not None and key not in own:
            report.dropped[key] = reason
        else:
            kept[key] = value
    load_exact(model, kept, report, name)
    report.log()
    return report
