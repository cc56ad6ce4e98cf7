"""Backbone cards: every registered backbone is described, builds from its card, and the docs table is current."""

from __future__ import annotations

from pathlib import Path

from geoft.models.backbones.catalog import BACKBONES, backbone_cards, markdown_table
from geoft.registry import BACKBONE_REGISTRY, import_object

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_every_card_names_a_builder_and_is_registered() -> None:
    cards = backbone_cards()
    assert cards and set(cards) == set(BACKBONES)
    for name, card in cards.items():
        assert name in BACKBONE_REGISTRY
        assert callable(import_object(card.target)), name
        assert card.family and card.inputs and card.output in ("tokens", "pyramid"), name


def test_docs_models_table_is_the_generated_one() -> None:
    text = DOCS.read_text()
    assert markdown_table() in text, (
        "docs/models.md is out of date: regenerate the table with "
        "`python -m geoft.models.backbones.catalog --write`"
    )
