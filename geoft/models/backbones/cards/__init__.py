"""Backbone cards: what each registered backbone is, as plain data (no model code is imported).

One module per family (``cards/<family>.py``) holds a ``CARDS: dict[str, BackboneCard]``; the
catalog merges them into the backbone registry's name table and into ``docs/models.md``. Add a
family by adding its module to :data:`FAMILY_MODULES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAMILY_MODULES: tuple[str, ...] = (
    "prithvi",
    "torchgeo",
    "terramind",
    "clay",
    "prithvi_swin",
    "wrappers",
)


@dataclass(frozen=True)
class BackboneCard:
    """One registered backbone, described for users (docs, the app's Model page) and for the registry.

    Attributes:
        target: ``"module:builder"`` of the builder function.
        family: model family as users know it ("Prithvi", "TerraMind", "DOFA", ...).
        inputs: the input contract in words: bands or modalities, frames, image size.
        published_bands: band names of the published weights, in order (empty: any / by wavelength).
        weights: where ``pretrained=True`` gets the weights (a Hugging Face repo and file, or a torchgeo enum).
        pretrained_needs: what ``pretrained=True`` needs ("internet or ckpt_path", ...).
        params_m: parameters of the encoder in millions (None: not measured).
        output: what ``forward`` returns ("tokens" for ViTs, "pyramid" for CNNs and Swins).
    """

    target: str
    family: str
    inputs: str
    published_bands: tuple[str, ...] = field(default=())
    weights: str = "none (random initialisation only)"
    pretrained_needs: str = "internet, or a local ckpt_path"
    params_m: float | None = None
    output: str = "tokens"
