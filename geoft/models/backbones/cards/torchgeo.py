"""Cards of the backbones built from torchgeo's model code and weight enums."""

from __future__ import annotations

from geoft.models.backbones.cards import BackboneCard

CARDS: dict[str, BackboneCard] = {
    f"torchgeo_{arch}": BackboneCard(
        target=f"geoft.models.backbones.torchgeo:torchgeo_{arch}",
        family="torchgeo ResNet",
        inputs="in_chans set by the chosen weights enum (weights=...); [B,C,H,W], any size",
        weights=f"torchgeo ResNet{arch[6:]}_Weights.* (weights=)",
        params_m=params,
        output="pyramid",
    )
    for arch, params in (("resnet18", 11.2), ("resnet50", 23.5), ("resnet152", 58.1))
}
