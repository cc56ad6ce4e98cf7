"""Static name tables for necks, decoders and model factories (read by :mod:`geoft.registry`).

Only strings live here, so listing names imports no model code. Add a line when you add a component.
"""

from __future__ import annotations

NECKS: dict[str, str] = {
    "SelectIndices": "geoft.models.necks:SelectIndices",
    "PermuteDims": "geoft.models.necks:PermuteDims",
    "ReshapeTokensToImage": "geoft.models.necks:ReshapeTokensToImage",
    "AggregateTokens": "geoft.models.necks:AggregateTokens",
    "InterpolateToPyramidal": "geoft.models.necks:InterpolateToPyramidal",
    "MaxpoolToPyramidal": "geoft.models.necks:MaxpoolToPyramidal",
    "LearnedInterpolateToPyramidal": "geoft.models.necks:LearnedInterpolateToPyramidal",
    "AddBottleneckLayer": "geoft.models.necks:AddBottleneckLayer",
    "FeaturePyramidNetworkNeck": "geoft.models.fpn_neck:FeaturePyramidNetworkNeck",
}

DECODERS: dict[str, str] = {
    "FCNDecoder": "geoft.models.decoders.fcn:FCNDecoder",
    "UperNetDecoder": "geoft.models.decoders.upernet:UperNetDecoder",
    "UNetDecoder": "geoft.models.decoders.unet:UNetDecoder",
    "IdentityDecoder": "geoft.models.decoders.identity:IdentityDecoder",
    "LinearDecoder": "geoft.models.decoders.linear:LinearDecoder",
    "MLPDecoder": "geoft.models.decoders.mlp:MLPDecoder",
    "ASPPDecoder": "geoft.models.decoders.aspp:ASPPDecoder",
    # the reference's ASPP modules with their final conv (conv_seg / conv_reg)
    "ASPPSegmentationHead": "geoft.models.decoders.aspp:ASPPSegmentationHead",
    "ASPPRegressionHead": "geoft.models.decoders.aspp:ASPPRegressionHead",
}

MODEL_FACTORIES: dict[str, str] = {
    "EncoderDecoderFactory": "geoft.models.factories.encoder_decoder:EncoderDecoderFactory",
    "SMPModelFactory": "geoft.models.factories.smp:SMPModelFactory",
    "TimmModelFactory": "geoft.models.factories.timm:TimmModelFactory",
    "FullModelFactory": "geoft.models.factories.full:FullModelFactory",
    "Clay1_5ModelFactory": "geoft.models.factories.clay:Clay1_5ModelFactory",
    "ObjectDetectionModelFactory": "geoft.models.factories.detection:ObjectDetectionModelFactory",
    # the reference's deprecated names (one notice each, same model)
    "PrithviModelFactory": "geoft.models.factories.deprecated:PrithviModelFactory",
    "GenericUnetModelFactory": "geoft.models.factories.deprecated:GenericUnetModelFactory",
}
