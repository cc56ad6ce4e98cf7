"""Cards of the TerraMind encoders (IBM / ESA), weights on the Hugging Face hub."""

from __future__ import annotations

from geoft.models.backbones.cards import BackboneCard

_S2L2A = (
    "S2L2A: COASTAL_AEROSOL, BLUE, GREEN, RED, RED_EDGE_1, RED_EDGE_2, RED_EDGE_3, NIR_BROAD, NIR_NARROW, "
)
_S2L2A += "WATER_VAPOR, SWIR_1, SWIR_2"
_V1_BANDS = (
    _S2L2A,
    "S2L1C: as S2L2A with CIRRUS before SWIR_1",
    "S2RGB: RED, GREEN, BLUE",
    "S1GRD: VV, VH",
    "S1RTC: VV, VH",
    "DEM: DEM",
)
_INPUTS = (
    "modalities {inputs}, plus your own as {{name: channels}}; a [B,C,H,W] tensor (first modality) or "
    "{{modality: [B,C,H,W]}} with any subset; bands by name per modality; H, W multiples of 16 (padded); "
    "merge_method mean | max | concat | dict | None"
)
# name -> (Hugging Face repo: file, parameters in millions with every published modality's embedding)
_VARIANTS = {
    "terramind_v1_tiny": ("ibm-esa-geospatial/TerraMind-1.0-tiny: TerraMind_v1_tiny.pt", 7.0),
    "terramind_v1_small": ("ibm-esa-geospatial/TerraMind-1.0-small: TerraMind_v1_small.pt", 24.5),
    "terramind_v1_base": ("ibm-esa-geospatial/TerraMind-1.0-base: TerraMind_v1_base.pt", 91.4),
    "terramind_v1_large": ("ibm-esa-geospatial/TerraMind-1.0-large: TerraMind_v1_large.pt", 310.6),
    "terramind_v01_base": ("FAST-EO/TerraMind-0.1-base: TerraMind_v01_base.pt", 87.3),
}

CARDS: dict[str, BackboneCard] = {
    name: BackboneCard(
        target=f"geoft.models.backbones.terramind:{name}",
        family="TerraMind",
        inputs=_INPUTS.format(
            inputs="S2L2A (pre-trained in v0.1; others start fresh)"
            if "v01" in name
            else "S2L2A, S2L1C, S2RGB, S1GRD, S1RTC, DEM"
        ),
        published_bands=_V1_BANDS[:1] if "v01" in name else _V1_BANDS,
        weights=weights,
        pretrained_needs=(
            "internet and a HF_TOKEN with access to the gated repo, or a local ckpt_path"
            if "v01" in name
            else "internet, or a local ckpt_path"
        ),
        params_m=params,
    )
    for name, (weights, params) in _VARIANTS.items()
}
