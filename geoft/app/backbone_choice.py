"""What the Model page shows and needs about a backbone: from its card (family, parameters, input,
weights) and its builder's signature (bands by name, or a channel count)."""

from __future__ import annotations

import inspect
from functools import cache

from geoft.models.backbones.cards import BackboneCard
from geoft.models.backbones.catalog import backbone_cards


@cache
def cards() -> dict[str, BackboneCard]:
    return backbone_cards()


def registry_names() -> tuple[list[str], list[str], list[str]]:
    """geoft's own backbone, neck and decoder names (cheap: no model code is imported)."""
    from geoft.registry import BACKBONE_REGISTRY, DECODER_REGISTRY, NECK_REGISTRY

    return BACKBONE_REGISTRY.names(), NECK_REGISTRY.names(), DECODER_REGISTRY.names()


def grouped_names(names: list[str]) -> list[str]:
    """``names`` ordered by family, then name (backbones without a card, e.g. ``timm_*``, last)."""
    known = cards()
    return sorted(names, key=lambda n: (n not in known, known[n].family if n in known else "", n))


def label(name: str) -> str:
    """``"TerraMind · terramind_v1_base (91.4 M)"``; the bare name when there is no card."""
    card = cards().get(name)
    if card is None:
        return name
    size = f" ({card.params_m:g} M)" if card.params_m is not None else ""
    return f"{card.family} · {name}{size}"


def describe(name: str) -> str:
    """One paragraph for the page: input contract, output and where the weights come from."""
    card = cards().get(name)
    if card is None:
        return f"`{name}`: a timm model (features at several strides; `in_chans` set from the data)."
    bands = f" Published bands: {', '.join(card.published_bands)}." if card.published_bands else ""
    return (
        f"**{card.family}**, {card.params_m:g} M parameters. Input: {card.inputs}.{bands} "
        f"Output: {card.output}. Weights: {card.weights} (needs: {card.pretrained_needs})."
        if card.params_m is not None
        else f"**{card.family}**. Input: {card.inputs}.{bands} Weights: {card.weights}."
    )


def has_published_weights(name: str) -> bool:
    """Whether ``backbone_pretrained: true`` can fetch weights for this backbone (online)."""
    card = cards().get(name)
    if card is None:
        return True  # timm models download their published weights
    return not card.weights.lower().startswith("none")


@cache
def band_argument(name: str) -> str:
    """``"bands"`` when the backbone takes band names (its patch embedding is cut to them), else ``"in_chans"``."""
    from geoft.registry import BACKBONE_REGISTRY

    if name not in cards():
        return "in_chans"
    try:
        parameters = inspect.signature(BACKBONE_REGISTRY.get(name)).parameters
    except (TypeError, ValueError):
        return "in_chans"
    return "bands" if "bands" in parameters else "in_chans"


def default_input_bands(dataset_bands: list[str], name: str) -> list[str]:
    """The dataset's bands that the backbone was pretrained on, in the published order (all of the
    dataset's when fewer than three match, or when the backbone publishes no band list)."""
    card = cards().get(name)
    published = card.published_bands if card is not None else ()
    present = [b for b in published if b in dataset_bands]
    return present if len(present) >= 3 else list(dataset_bands)


__all__ = [
    "band_argument",
    "default_input_bands",
    "describe",
    "grouped_names",
    "has_published_weights",
    "label",
]
