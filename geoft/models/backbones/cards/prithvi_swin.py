"""Cards of the Prithvi Swin encoders (the reference's prithvi_swin_B / prithvi_swin_L)."""

from __future__ import annotations

from geoft.models.backbones.cards import BackboneCard

_HLS = ("BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2")

CARDS: dict[str, BackboneCard] = {
    name: BackboneCard(
        target=f"geoft.models.backbones.prithvi_swin:{name}",
        family="Prithvi Swin",
        inputs="bands by name (any subset of the HLS bands, extra bands initialised new); [B,C,H,W], any size "
        "(padded to multiples of 32)",
        published_bands=_HLS,
        weights="none on the Hub; a local ckpt_path (original Swin / SimMIM or TerraTorch layout)",
        pretrained_needs="a local ckpt_path",
        params_m=params,
        output="pyramid",
    )
    for name, params in (("prithvi_swin_B", 86.8), ("prithvi_swin_L", 195.0))
}
