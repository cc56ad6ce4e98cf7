"""Cards of the terramind backbones."""

from __future__ import annotations

from geoft.models.backbones.cards import BackboneCard

CARDS: dict[str, BackboneCard] = {}
