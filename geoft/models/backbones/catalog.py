"""Static name table for geoft's own backbones (read by :mod:`geoft.registry`; strings only)."""

from __future__ import annotations

_PRITHVI = (
    "prithvi_eo_tiny",
    "prithvi_eo_v1_100",
    "prithvi_eo_v2_tiny_tl",
    "prithvi_eo_v2_100_tl",
    "prithvi_eo_v2_300",
    "prithvi_eo_v2_300_tl",
    "prithvi_eo_v2_600",
    "prithvi_eo_v2_600_tl",
)

BACKBONES: dict[str, str] = {
    **{name: f"geoft.models.backbones.prithvi:{name}" for name in _PRITHVI},
    "torchgeo_resnet18": "geoft.models.backbones.torchgeo:torchgeo_resnet18",
    "torchgeo_resnet50": "geoft.models.backbones.torchgeo:torchgeo_resnet50",
    "torchgeo_resnet152": "geoft.models.backbones.torchgeo:torchgeo_resnet152",
}
