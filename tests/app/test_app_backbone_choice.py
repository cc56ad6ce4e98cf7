"""The Model page's backbone list: every registered backbone, grouped by family, with its card."""

from __future__ import annotations

from geoft.app.backbone_choice import (
    band_argument,
    default_input_bands,
    describe,
    grouped_names,
    has_published_weights,
    label,
)
from geoft.registry import BACKBONE_REGISTRY


def test_every_registered_backbone_is_offered_grouped_by_family() -> None:
    names = grouped_names(BACKBONE_REGISTRY.names() + ["timm_resnet18"])
    assert set(names) == set(BACKBONE_REGISTRY.names()) | {"timm_resnet18"}
    carded = [n for n in names if " · " in label(n)]
    uncarded = [n for n in names if " · " not in label(n)]
    assert names == carded + uncarded  # backbones without a card (timm's, a user's own) after the families
    families = [label(n).split(" · ")[0] for n in carded]
    assert families == sorted(families)  # each family forms one block
    builtin = {
        n for n in BACKBONE_REGISTRY.names() if BACKBONE_REGISTRY.get(n).__module__.startswith("geoft.")
    }
    assert builtin <= set(carded), sorted(builtin - set(carded))  # every one of geoft's own has its card
    assert "timm_resnet18" in uncarded
    assert label("terramind_v1_base").startswith("TerraMind · terramind_v1_base (")


def test_card_facts_drive_bands_weights_and_description() -> None:
    assert band_argument("prithvi_eo_tiny") == "bands"
    assert band_argument("terramind_v1_tiny") == "bands"
    assert band_argument("timm_resnet18") == "in_chans"
    assert not has_published_weights("prithvi_eo_tiny")  # no published weights: the page asks for a file
    assert has_published_weights("prithvi_eo_v2_300") and has_published_weights("timm_resnet18")
    text = describe("clay_mae_large")
    assert "Clay" in text and "M parameters" in text and "made-with-clay" in text
    hls = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
    assert default_input_bands(["CIRRUS", *reversed(hls)], "prithvi_eo_v2_300") == hls
    assert default_input_bands(["VV", "VH"], "prithvi_eo_v2_300") == ["VV", "VH"]
