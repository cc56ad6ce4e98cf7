"""Cards of the wrappers that build on other backbones (late fusion of modalities)."""

from __future__ import annotations

from geoft.models.backbones.cards import BackboneCard

CARDS: dict[str, BackboneCard] = {
    "late_fusion": BackboneCard(
        target="geoft.models.backbones.late_fusion:late_fusion",
        family="Late fusion",
        inputs="{modality: [B,C,H,W]} (GenericMultiModalDataModule); one geoft backbone per modality, "
        "features merged by mean or concat; returns what its encoders return (pyramid for CNN encoders)",
        weights="those of each encoder",
        pretrained_needs="what each encoder needs",
        output="tokens",  # with ViT encoders, the usual case; CNN encoders give a pyramid (see inputs)
    ),
}
