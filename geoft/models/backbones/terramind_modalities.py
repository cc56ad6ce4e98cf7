"""TerraMind's raw input modalities: names, published band lists and pre-training statistics (data).

Users write the short names (``S2L2A``, ``S1GRD``, ...); the published checkpoints key their patch
embeddings by the pre-training names (``untok_sen2l2a@224``, ...). Modalities that TerraMind reads
through its tokenizers (LULC, NDVI, captions, coordinates, ``tok_*``) and Thinking-in-Modalities
generation are not supported here; asking for them is a :class:`~geoft.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from geoft.errors import ConfigError
from geoft.models.backbones.bands import Band, BandLike, normalize_bands

_S2L2A = (
    Band.COASTAL_AEROSOL,
    Band.BLUE,
    Band.GREEN,
    Band.RED,
    Band.RED_EDGE_1,
    Band.RED_EDGE_2,
    Band.RED_EDGE_3,
    Band.NIR_BROAD,
    Band.NIR_NARROW,
    Band.WATER_VAPOR,
    Band.SWIR_1,
    Band.SWIR_2,
)
_S2L1C = (*_S2L2A[:10], Band.CIRRUS, Band.SWIR_1, Band.SWIR_2)

#: canonical name -> (checkpoint key, published bands in channel order)
RAW_MODALITIES: dict[str, tuple[str, tuple[BandLike, ...]]] = {
    "S2L2A": ("untok_sen2l2a@224", _S2L2A),
    "S2L1C": ("untok_sen2l1c@224", _S2L1C),
    "S2RGB": ("untok_sen2rgb@224", (Band.RED, Band.GREEN, Band.BLUE)),
    "S1GRD": ("untok_sen1grd@224", (Band.VV, Band.VH)),
    "S1RTC": ("untok_sen1rtc@224", (Band.VV, Band.VH)),
    "DEM": ("untok_dem@224", ("DEM",)),
}

# Other spellings (after upper-casing and removing "_", "-", " "), as the reference accepts them.
_ALIASES = {
    "SEN2L2A": "S2L2A",
    "SEN2L1C": "S2L1C",
    "RGB": "S2RGB",
    "SEN2RGB": "S2RGB",
    "S1": "S1GRD",
    "SEN1GRD": "S1GRD",
    "SEN1RTC": "S1RTC",
    **{key.upper().replace("_", ""): name for name, (key, _) in RAW_MODALITIES.items()},
}
_TOKENIZED = ("LULC", "NDVI", "CAPTION", "CAPTIONS", "COORDS", "COORD", "LOCATION")

#: Pre-training means / stds per modality and band (``v1``: TerraMind 1.0, ``v01``: TerraMind 0.1).
PRETRAINING_MEAN: dict[str, dict[str, tuple[float, ...]]] = {
    "v1": {
        "S2L2A": (
            1390.458,
            1503.317,
            1718.197,
            1853.91,
            2199.1,
            2779.975,
            2987.011,
            3083.234,
            3132.22,
            3162.988,
            2424.884,
            1857.648,
        ),  # fmt: skip
        "S2L1C": (
            2357.089,
            2137.385,
            2018.788,
            2082.986,
            2295.651,
            2854.537,
            3122.849,
            3040.56,
            3306.481,
            1473.847,
            506.07,
            2472.825,
            1838.929,
        ),  # fmt: skip
        "S2RGB": (87.271, 80.931, 66.667),
        "S1GRD": (-12.599, -20.293),
        "S1RTC": (-10.93, -17.329),
        "DEM": (670.665,),
    },
    "v01": {
        "S2L2A": (
            794.311,
            925.161,
            1183.128,
            1338.041,
            1667.254,
            2233.633,
            2460.96,
            2555.569,
            2619.542,
            2703.298,
            2406.497,
            1841.645,
        ),  # fmt: skip
        "S1GRD": (-12.599, -20.293),
        "DEM": (435.726,),
    },
}
PRETRAINING_STD: dict[str, dict[str, tuple[float, ...]]] = {
    "v1": {
        "S2L2A": (
            2106.761,
            2141.107,
            2038.973,
            2134.138,
            2085.321,
            1889.926,
            1820.257,
            1871.918,
            1753.829,
            1797.379,
            1434.261,
            1334.311,
        ),  # fmt: skip
        "S2L1C": (
            1624.683,
            1675.806,
            1557.708,
            1833.702,
            1823.738,
            1733.977,
            1732.131,
            1679.732,
            1727.26,
            1024.687,
            442.165,
            1331.411,
            1160.419,
        ),  # fmt: skip
        "S2RGB": (58.767, 47.663, 42.631),
        "S1GRD": (5.195, 5.890),
        "S1RTC": (4.391, 4.459),
        "DEM": (951.272,),
    },
    "v01": {
        "S2L2A": (
            1164.883,
            1205.586,
            1223.713,
            1399.638,
            1403.298,
            1378.513,
            1434.924,
            1491.141,
            1454.089,
            1660.395,
            1473.248,
            1365.080,
        ),  # fmt: skip
        "S1GRD": (5.195, 5.890),
        "DEM": (560.326,),
    },
}

OUT_OF_SCOPE_HINT = (
    "geoft's TerraMind encoders read raw modalities only (S2L2A, S2L1C, S2RGB, S1GRD, S1RTC, DEM, or your own "
    "as {name: channels}); tokenizer-based inputs (LULC, NDVI, captions, coordinates, tok_*) and "
    "Thinking-in-Modalities / generation are not supported."
)


@dataclass(frozen=True)
class Modality:
    """One configured input modality.

    Attributes:
        name: what users call it (``S2L2A``, or the name of a user-defined modality).
        key: its name in checkpoints (``untok_sen2l2a@224``; a user-defined modality's own name).
        bands: the band of each input channel.
        published_bands: the bands of the published patch embedding (empty for user-defined modalities).
    """

    name: str
    key: str
    bands: tuple[BandLike, ...]
    published_bands: tuple[BandLike, ...] = ()

    @property
    def channels(self) -> int:
        return len(self.bands)


def _squash(name: str) -> str:
    return name.strip().upper().replace("_", "").replace("-", "").replace(" ", "")


def canonical_name(name: str) -> str | None:
    """The raw modality ``name`` stands for (``"s2_l2a"`` -> ``"S2L2A"``), or None if it is none of them.

    Raises:
        ConfigError: ``name`` is a tokenizer-based modality (out of scope).
    """
    if not isinstance(name, str):
        raise ConfigError(f"modality names are strings, got {name!r}")
    squashed = _squash(name)
    if squashed in RAW_MODALITIES:
        return squashed
    if squashed in _ALIASES:
        return _ALIASES[squashed]
    if squashed.startswith("TOK") or squashed.split("@")[0] in _TOKENIZED:
        raise ConfigError(f"modality {name!r} is a tokenizer-based TerraMind input.", hint=OUT_OF_SCOPE_HINT)
    return None


def resolve_modalities(
    modalities: Sequence[str | Mapping[str, int]] | Mapping[str, int] | None,
    bands: Mapping[str, Sequence[BandLike]] | Sequence[BandLike] | None,
    pretrained_bands: Mapping[str, Sequence[BandLike]] | None = None,
) -> list[Modality]:
    """The configured modalities, in order, with the band of each channel.

    Args:
        modalities: raw modality names and ``{name: channels}`` for user-defined ones (the reference's
            format); default ``["S2L2A"]``.
        bands: ``{modality: [band, ...]}`` selecting and ordering channels of a modality (a plain
            list when there is one modality). Unknown band names get fresh patch-embedding weights.
        pretrained_bands: ``{modality: [band, ...]}`` overriding a modality's published band list.
    """
    entries = _entries(modalities)
    resolved: list[Modality] = []
    for name, channels in entries:
        canonical = canonical_name(name)
        if canonical is not None and channels is not None:
            raise ConfigError(
                f"modality {name!r} is a pre-trained TerraMind modality; list it by name, not as {{{name}: "
                f"{channels}}}",
                hint="choose bands with bands={modality: [...]}; give user-defined modalities another name",
            )
        if canonical is None and channels is None:
            raise ConfigError(
                f"unknown TerraMind modality {name!r}; known: {', '.join(RAW_MODALITIES)}.",
                hint="define a new modality as {name: number_of_channels} in modalities",
            )
        if canonical is not None:
            key, published = RAW_MODALITIES[canonical]
            resolved.append(Modality(canonical, key, published, published))
        else:
            if "." in name or not name.strip():
                raise ConfigError(f"user-defined modality name {name!r} must be non-empty and contain no '.'")
            if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
                raise ConfigError(
                    f"modality {name!r}: the channel count must be a positive int, got {channels!r}"
                )
            resolved.append(Modality(name, name, tuple(f"{name}_{i}" for i in range(channels))))
    _check_unique(resolved)
    resolved = _with_overrides(resolved, pretrained_bands, "pretrained_bands", published=True)
    return _with_overrides(resolved, bands, "bands", published=False)


def _entries(modalities: object) -> list[tuple[str, int | None]]:
    if modalities is None:
        return [("S2L2A", None)]
    if isinstance(modalities, Mapping):
        return [(str(k), v) for k, v in modalities.items()]
    if isinstance(modalities, str) or not isinstance(modalities, Sequence) or not modalities:
        raise ConfigError(
            f"modalities must be a non-empty list of modality names (and {{name: channels}} dicts), got "
            f"{modalities!r}"
        )
    out: list[tuple[str, int | None]] = []
    for entry in modalities:
        if isinstance(entry, Mapping):
            out += [(str(k), v) for k, v in entry.items()]
        else:
            out.append((entry, None))  # type: ignore[arg-type]
    return out


def _check_unique(resolved: list[Modality]) -> None:
    seen: set[str] = set()
    for modality in resolved:
        if modality.name in seen or modality.key in seen:
            raise ConfigError(f"modality {modality.name!r} is listed twice in modalities")
        seen |= {modality.name, modality.key}


def find_modality(resolved: Sequence[Modality], name: str) -> Modality | None:
    """The configured modality that ``name`` (any accepted spelling) refers to."""
    for modality in resolved:
        if name in (modality.name, modality.key):
            return modality
    canonical = canonical_name(name)
    return next((m for m in resolved if m.name == canonical), None) if canonical else None


def _with_overrides(
    resolved: list[Modality],
    overrides: Mapping[str, Sequence[BandLike]] | Sequence[BandLike] | None,
    argument: str,
    published: bool,
) -> list[Modality]:
    if overrides is None:
        return resolved
    if not isinstance(overrides, Mapping):
        if len(resolved) != 1:
            raise ConfigError(
                f"{argument} is a plain list but {len(resolved)} modalities are configured",
                hint=f"give {argument} as {{modality: [band, ...]}}",
            )
        overrides = {resolved[0].name: overrides}
    by_name = {m.name: m for m in resolved}
    for name, band_list in overrides.items():
        target = find_modality(resolved, name)
        if target is None:
            raise ConfigError(
                f"{argument} names modality {name!r}, which is not in modalities ({', '.join(by_name)})"
            )
        normalized = tuple(normalize_bands(band_list, f"{argument}[{name!r}]"))
        if not target.published_bands and len(normalized) != target.channels:
            raise ConfigError(
                f"{argument}[{name!r}] lists {len(normalized)} bands but modality {target.name!r} was defined "
                f"with {target.channels} channels"
            )
        if published:
            by_name[target.name] = Modality(target.name, target.key, normalized, normalized)
            continue
        by_name[target.name] = Modality(target.name, target.key, normalized, target.published_bands)
    return [by_name[m.name] for m in resolved]


def per_band_statistics(version: str, modalities: Sequence[Modality]) -> tuple[dict, dict]:
    """Pre-training mean and std for each configured modality and band (None where unknown)."""
    means: dict[str, list[float | None]] = {}
    stds: dict[str, list[float | None]] = {}
    for modality in modalities:
        published = RAW_MODALITIES.get(modality.name, ("", ()))[1]
        mean = dict(zip(published, PRETRAINING_MEAN[version].get(modality.name, ())))
        std = dict(zip(published, PRETRAINING_STD[version].get(modality.name, ())))
        means[modality.name] = [mean.get(b) for b in modality.bands]
        stds[modality.name] = [std.get(b) for b in modality.bands]
    return means, stds
