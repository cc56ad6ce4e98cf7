"""Spectral band names that users write in configs, and how they are matched to pretrained bands.

A band is a :class:`Band` member (a name geoft knows), a free string (a band the pretrained model
has never seen, e.g. ``"NDVI"``) or an int (an opaque identifier for custom checkpoints).
Pretrained patch-embedding weights are copied for bands that match; other bands start fresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from geoft.errors import ConfigError


class Band(str, Enum):
    """Named spectral bands (HLS / Sentinel-2 / Landsat naming, plus SAR polarisations)."""

    COASTAL_AEROSOL = "COASTAL_AEROSOL"
    BLUE = "BLUE"
    GREEN = "GREEN"
    RED = "RED"
    RED_EDGE_1 = "RED_EDGE_1"
    RED_EDGE_2 = "RED_EDGE_2"
    RED_EDGE_3 = "RED_EDGE_3"
    NIR_BROAD = "NIR_BROAD"
    NIR_NARROW = "NIR_NARROW"
    WATER_VAPOR = "WATER_VAPOR"
    CIRRUS = "CIRRUS"
    SWIR_1 = "SWIR_1"
    SWIR_2 = "SWIR_2"
    THERMAL_INFRARED_1 = "THERMAL_INFRARED_1"
    THERMAL_INFRARED_2 = "THERMAL_INFRARED_2"
    VV = "VV"
    VH = "VH"
    HH = "HH"
    HV = "HV"

    def __str__(self) -> str:
        return self.value


# Spellings people use for the same band. "NIR" means the narrow NIR band that Prithvi was
# pretrained on (HLS B05 / Sentinel-2 B8A); write NIR_BROAD for Sentinel-2 B08.
_ALIASES: dict[str, Band] = {
    "COASTAL": Band.COASTAL_AEROSOL,
    "AEROSOL": Band.COASTAL_AEROSOL,
    "NIR": Band.NIR_NARROW,
    "NARROW_NIR": Band.NIR_NARROW,
    "BROAD_NIR": Band.NIR_BROAD,
    "SWIR1": Band.SWIR_1,
    "SWIR2": Band.SWIR_2,
    "SWIR16": Band.SWIR_1,
    "SWIR22": Band.SWIR_2,
    "RE1": Band.RED_EDGE_1,
    "RE2": Band.RED_EDGE_2,
    "RE3": Band.RED_EDGE_3,
    "TIR1": Band.THERMAL_INFRARED_1,
    "TIR2": Band.THERMAL_INFRARED_2,
}

BandLike = Band | str | int

#: The six HLS bands every published Prithvi-EO checkpoint was pretrained on, in order.
PRITHVI_BANDS: tuple[Band, ...] = (
    Band.BLUE,
    Band.GREEN,
    Band.RED,
    Band.NIR_NARROW,
    Band.SWIR_1,
    Band.SWIR_2,
)


def normalize_band(band: BandLike) -> BandLike:
    """Turn a user spelling into a :class:`Band` when geoft knows it; keep other strings and ints.

    Matching ignores case, spaces and dashes (``"swir-1"``, ``"Swir 1"`` and ``"SWIR1"`` are all
    :attr:`Band.SWIR_1`).
    """
    if isinstance(band, Band):
        return band
    if isinstance(band, bool) or not isinstance(band, str | int):
        raise ConfigError(
            f"band {band!r} has type {type(band).__name__}; a band is a name (e.g. 'RED') or an int",
        )
    if isinstance(band, int):
        return band
    key = band.strip().upper().replace("-", "_").replace(" ", "_")
    if not key:
        raise ConfigError("empty band name in bands; remove it or give the band a name")
    if key in Band.__members__:
        return Band[key]
    return _ALIASES.get(key, band.strip())


def normalize_bands(bands: Sequence[BandLike], argument: str = "bands") -> list[BandLike]:
    """Normalise a band list and reject duplicates (they would make weight selection ambiguous)."""
    if isinstance(bands, str | bytes) or not isinstance(bands, Sequence):
        raise ConfigError(f"{argument} must be a list of band names, got {bands!r}")
    out = [normalize_band(b) for b in bands]
    seen: set[BandLike] = set()
    dupes = [str(b) for b in out if b in seen or seen.add(b)]  # type: ignore[func-returns-value]
    if dupes:
        raise ConfigError(f"{argument} lists {', '.join(dupes)} more than once; each band may appear once")
    if not out:
        raise ConfigError(f"{argument} is empty; list at least one band")
    return out


def band_label(band: BandLike) -> str:
    """Readable name of a band for messages and reports."""
    return band.value if isinstance(band, Band) else str(band)
