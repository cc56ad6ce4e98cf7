"""Static name table for geoft's own backbones (read by :mod:`geoft.registry`; strings only)."""

from __future__ import annotations

BACKBONES: dict[str, str] = {
    # "prithvi_eo_tiny": "geoft.models.backbones.prithvi:prithvi_eo_tiny",
}
