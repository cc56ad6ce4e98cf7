"""Static name table for geoft's own backbones (read by :mod:`geoft.registry`; strings only).

The names come from the family cards in :mod:`geoft.models.backbones.cards`; importing this module
imports no model code. ``python -m geoft.models.backbones.catalog`` prints the table of
``docs/models.md``; ``--write`` updates that file.
"""

from __future__ import annotations

import importlib

from geoft.models.backbones.cards import FAMILY_MODULES, BackboneCard


def backbone_cards() -> dict[str, BackboneCard]:
    """Every card of every family, by registry name (a name in two families is an error)."""
    cards: dict[str, BackboneCard] = {}
    for family in FAMILY_MODULES:
        module = importlib.import_module(f"geoft.models.backbones.cards.{family}")
        for name, card in module.CARDS.items():
            if name in cards:
                raise ValueError(f"backbone name {name!r} is registered by two families")
            cards[name] = card
    return cards


BACKBONES: dict[str, str] = {name: card.target for name, card in backbone_cards().items()}


def markdown_table() -> str:
    """The backbone table of ``docs/models.md``."""
    rows = [
        "| name | family | params (M) | input | published bands | output | weights (`pretrained=True`) | needs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, card in backbone_cards().items():
        params = "—" if card.params_m is None else f"{card.params_m:g}"
        bands = ", ".join(card.published_bands) or "—"
        rows.append(
            f"| `{name}` | {card.family} | {params} | {card.inputs} | {bands} | {card.output} | "
            f"{card.weights} | {card.pretrained_needs} |"
        )
    return "\n".join(rows) + "\n"


def write_docs(path: str) -> None:
    """Replace the generated table in ``path`` (between ``<!-- table: generated -->`` and ``<!-- /table -->``)."""
    from pathlib import Path

    doc = Path(path)
    head, rest = doc.read_text().split("<!-- table: generated -->\n", 1)
    _, tail = rest.split("<!-- /table -->", 1)
    doc.write_text(f"{head}<!-- table: generated -->\n{markdown_table()}<!-- /table -->{tail}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"]:
        write_docs(sys.argv[2] if len(sys.argv) > 2 else "docs/models.md")
    else:
        print(markdown_table(), end="")
