"""Static name tables for necks, decoders and model factories (read by :mod:`geoft.registry`).

Only strings live here, so listing names imports no model code. Add a line when you add a component.
"""

from __future__ import annotations

NECKS: dict[str, str] = {
    # filled by geoft/models/necks.py's components, e.g.
    # "SelectIndices": "geoft.models.necks:SelectIndices",
}

DECODERS: dict[str, str] = {
    # "UperNetDecoder": "geoft.models.decoders.upernet:UperNetDecoder",
}

MODEL_FACTORIES: dict[str, str] = {
    "EncoderDecoderFactory": "geoft.models.factories.encoder_decoder:EncoderDecoderFactory",
    "SMPModelFactory": "geoft.models.factories.smp:SMPModelFactory",
    "TimmModelFactory": "geoft.models.factories.timm:TimmModelFactory",
    "FullModelFactory": "geoft.models.factories.full:FullModelFactory",
}
