"""Band names: spellings, aliases, free strings, ints, duplicates."""

from __future__ import annotations

import pytest

from geoft.errors import ConfigError
from geoft.models.backbones.bands import Band, band_label, normalize_band, normalize_bands


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("RED", Band.RED),
        ("red", Band.RED),
        ("swir-1", Band.SWIR_1),
        ("Swir 2", Band.SWIR_2),
        ("SWIR1", Band.SWIR_1),
        ("NIR", Band.NIR_NARROW),
        ("nir_broad", Band.NIR_BROAD),
        (Band.BLUE, Band.BLUE),
        (7, 7),
        ("NDVI", "NDVI"),
    ],
)
def test_normalize_band(given, expected):
    assert normalize_band(given) == expected


def test_lists_reject_duplicates_and_bad_types():
    assert normalize_bands(["red", "NDVI", 3]) == [Band.RED, "NDVI", 3]
    with pytest.raises(ConfigError, match="RED more than once"):
        normalize_bands(["RED", "red"])
    with pytest.raises(ConfigError, match="list of band names"):
        normalize_bands("RED")
    with pytest.raises(ConfigError, match="has type float"):
        normalize_band(1.5)
    with pytest.raises(ConfigError, match="empty"):
        normalize_bands([])


def test_band_label():
    assert band_label(Band.SWIR_1) == "SWIR_1" and band_label(3) == "3" and str(Band.RED) == "RED"
