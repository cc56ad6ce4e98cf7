"""Cards of the Clay v1 / v1.5 encoders (Clay Foundation), weights on the Hugging Face hub."""

from __future__ import annotations

from geoft.models.backbones.cards import BackboneCard

_BANDS = ("BLUE", "GREEN", "RED", "NIR_BROAD", "SWIR_1", "SWIR_2")
_VARIANTS = {
    "clay_v1_base": ("made-with-clay/Clay-legacy: v1/clay-v1-base.ckpt", 92.1, "Clay v1"),
    "clay_mae_tiny": ("none published (random initialisation)", 4.0, "Clay v1.5"),
    "clay_mae_small": ("none published (random initialisation)", 11.0, "Clay v1.5"),
    "clay_mae_base": ("none published (random initialisation)", 92.1, "Clay v1.5"),
    "clay_mae_large": ("made-with-clay/Clay: v1.5/clay-v1.5.ckpt", 311.4, "Clay v1.5"),
}

CARDS: dict[str, BackboneCard] = {
    name: BackboneCard(
        target=f"geoft.models.backbones.clay:{name}",
        family=family,
        inputs="any bands by name (kernels generated from their wavelengths; default the six listed), "
        "gsd in metres (default 10); [B,C,H,W], H, W multiples of 8 (padded); optional time and location",
        published_bands=_BANDS,
        weights=weights,
        pretrained_needs="no published weights"
        if weights.startswith("none")
        else "internet, or a local ckpt_path",
        params_m=params,
    )
    for name, (weights, params, family) in _VARIANTS.items()
}
