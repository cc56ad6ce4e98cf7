"""Centre wavelengths and bandwidths of named bands, for wavelength-conditioned models.

DOFA, CopernicusFM and Panopticon build their patch embedding from each band's wavelength. Users
name bands (``bands=["RED", "NIR_BROAD", "VV"]``); the numbers come from this table. Optical values
are Sentinel-2's (the centres rounded as DOFA's authors use them, the bandwidths of the Sentinel-2
user handbook); Landsat-only bands use Landsat 8/9 values. SAR bands have no optical wavelength:
each model has its own convention (see the functions below).
"""

from __future__ import annotations

from collections.abc import Sequence

from geoft.errors import ConfigError
from geoft.models.backbones.bands import BandLike, band_label, normalize_band

#: band -> (centre wavelength, bandwidth), both in nanometres.
OPTICAL_NM: dict[str, tuple[float, float]] = {
    "COASTAL_AEROSOL": (440.0, 20.0),
    "BLUE": (490.0, 65.0),
    "GREEN": (560.0, 35.0),
    "RED": (665.0, 30.0),
    "RED_EDGE_1": (705.0, 15.0),
    "RED_EDGE_2": (740.0, 15.0),
    "RED_EDGE_3": (783.0, 20.0),
    "NIR_BROAD": (832.0, 115.0),
    "NIR_NARROW": (864.0, 20.0),
    "WATER_VAPOR": (945.0, 20.0),
    "CIRRUS": (1373.0, 30.0),
    "SWIR_1": (1610.0, 90.0),
    "SWIR_2": (2200.0, 180.0),
    "PANCHROMATIC": (590.0, 180.0),
    "THERMAL_INFRARED_1": (10900.0, 600.0),
    "THERMAL_INFRARED_2": (12000.0, 1000.0),
}
SAR_BANDS: tuple[str, ...] = ("VV", "VH", "HH", "HV")

#: DOFA's value for Sentinel-1 C-band channels, in its own units (as DOFA's Sentinel-1 inputs use it).
DOFA_SAR_UM = 5.405
#: CopernicusFM's convention for Sentinel-1: a centre of 5 cm and a bandwidth of 1 m, in nm.
COPERNICUSFM_SAR_NM = (5.0e7, 1.0e9)
#: Panopticon's channel ids for SAR: negative integers, -1 VV, -2 VH, -3 HH, -4 HV (orbit unknown).
PANOPTICON_SAR_IDS = {"VV": -1.0, "VH": -2.0, "HH": -3.0, "HV": -4.0}


def _key(band: BandLike, model: str) -> str:
    key = band_label(normalize_band(band))
    if key not in OPTICAL_NM and key not in SAR_BANDS:
        raise ConfigError(
            f"{model} needs the wavelength of band {key!r}, which geoft does not know.",
            hint=f"name bands from: {', '.join([*OPTICAL_NM, *SAR_BANDS])}",
        )
    return key


def dofa_wavelengths_um(bands: Sequence[BandLike]) -> list[float]:
    """DOFA's per-band wavelengths, in micrometres."""
    return [
        DOFA_SAR_UM if k in SAR_BANDS else OPTICAL_NM[k][0] / 1000 for k in (_key(b, "DOFA") for b in bands)
    ]


def copernicusfm_spectra_nm(bands: Sequence[BandLike]) -> tuple[list[float], list[float]]:
    """CopernicusFM's per-band (wavelengths, bandwidths), in nanometres."""
    pairs = [
        COPERNICUSFM_SAR_NM if k in SAR_BANDS else OPTICAL_NM[k]
        for k in (_key(b, "CopernicusFM") for b in bands)
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def panopticon_channel_ids(bands: Sequence[BandLike]) -> list[float]:
    """Panopticon's channel ids: the centre wavelength in nm for optical bands, negative ids for SAR."""
    return [
        PANOPTICON_SAR_IDS[k] if k in SAR_BANDS else OPTICAL_NM[k][0]
        for k in (_key(b, "Panopticon") for b in bands)
    ]
