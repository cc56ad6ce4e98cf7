"""Cards of the Prithvi-EO ViTs (IBM/NASA), weights on the Hugging Face hub."""

from __future__ import annotations

from geoft.models.backbones.cards import BackboneCard

_HLS = ("BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2")
_REPOS = {
    "prithvi_eo_tiny": ("none published (random initialisation, for tests and demos)", 5.2),
    "prithvi_eo_v1_100": ("ibm-nasa-geospatial/Prithvi-EO-1.0-100M: Prithvi_EO_V1_100M.pt", 86.2),
    "prithvi_eo_v2_tiny_tl": ("ibm-nasa-geospatial/Prithvi-EO-2.0-tiny-TL: Prithvi_EO_V2_tiny_TL.pt", 5.7),
    "prithvi_eo_v2_100_tl": ("ibm-nasa-geospatial/Prithvi-EO-2.0-100M-TL: Prithvi_EO_V2_100M_TL.pt", 86.2),
    "prithvi_eo_v2_300": ("ibm-nasa-geospatial/Prithvi-EO-2.0-300M: Prithvi_EO_V2_300M.pt", 303.0),
    "prithvi_eo_v2_300_tl": ("ibm-nasa-geospatial/Prithvi-EO-2.0-300M-TL: Prithvi_EO_V2_300M_TL.pt", 303.0),
    "prithvi_eo_v2_600": ("ibm-nasa-geospatial/Prithvi-EO-2.0-600M: Prithvi_EO_V2_600M.pt", 631.0),
    "prithvi_eo_v2_600_tl": ("ibm-nasa-geospatial/Prithvi-EO-2.0-600M-TL: Prithvi_EO_V2_600M_TL.pt", 631.0),
}

CARDS: dict[str, BackboneCard] = {
    name: BackboneCard(
        target=f"geoft.models.backbones.prithvi:{name}",
        family="Prithvi-EO",
        inputs="bands by name (any subset of the HLS bands, extra bands initialised new); [B,C,H,W] or "
        "[B,C,T,H,W]; H, W multiples of 16 (padded)"
        + ("; temporal and location coords" if "_tl" in name else ""),
        published_bands=_HLS,
        weights=weights,
        pretrained_needs="no published weights"
        if name == "prithvi_eo_tiny"
        else "internet, or a local ckpt_path",
        params_m=params,
    )
    for name, (weights, params) in _REPOS.items()
}
