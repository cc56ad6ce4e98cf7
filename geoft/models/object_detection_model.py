"""ObjectDetectionModel: a geoft backbone and necks inside a torchvision detection model.

Class indices are the dataset's, ``0..num_classes-1``, in and out: the model adds the background class
that Faster/Mask R-CNN reserve (index 0) itself, so configs never count it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import Tensor, nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from geoft.errors import ConfigError
from geoft.models.model import Model, freeze_module
from geoft.models.necks import NeckChain

FRAMEWORKS = ("faster-rcnn", "retinanet", "fcos", "mask-rcnn")
# frameworks whose torchvision classifier reserves index 0 for the background
BACKGROUND_FRAMEWORKS = ("faster-rcnn", "mask-rcnn")


class NativeSizeTransform(GeneralizedRCNNTransform):
    """torchvision's batching and normalisation without its resizing: chips are used at their own size
    in training and inference alike (object sizes then match between the two)."""

    def resize(
        self, image: Tensor, target: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        return image, target


class DetectionBackbone(nn.Module):
    """Encoder + neck chain returning the named pyramid levels torchvision's detectors expect.

    Attributes:
        out_channels: channels of every level (torchvision needs one number).
        level_names: ``feat0``, ``feat1``, ... finest first.
    """

    def __init__(self, encoder: nn.Module, neck: NeckChain, channel_list: list[int]) -> None:
        super().__init__()
        if len(set(channel_list)) != 1:
            raise ConfigError(
                f"detection heads need every pyramid level to have the same channels, got {channel_list}",
                hint="end the necks with {name: FeaturePyramidNetworkNeck} (or leave necks unset)",
            )
        self.encoder = encoder
        self.neck = neck
        self.out_channels = int(channel_list[0])
        self.level_names = [f"feat{i}" for i in range(len(channel_list))]

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        features = self.encoder(x)
        if isinstance(features, Tensor):
            features = [features]
        levels = self.neck(list(features), image_size=(x.shape[-2], x.shape[-1]))
        if len(levels) != len(self.level_names):
            raise ConfigError(f"the necks returned {len(levels)} levels, expected {len(self.level_names)}")
        return OrderedDict(zip(self.level_names, levels, strict=True))


class ObjectDetectionModel(Model):
    """Wraps a torchvision detector (``torchvision_model``, as in the reference) built on a
    :class:`DetectionBackbone`.

    ``forward(x, targets)`` in training mode returns torchvision's loss dict; in eval mode a list with one
    ``{"boxes" [N, 4] xyxy pixels, "labels" [N], "scores" [N], ("masks" [N, 1, H, W] probabilities)}``
    per image. Targets use the same layout (``masks`` as ``[N, H, W]`` uint8).
    """

    def __init__(self, torchvision_model: nn.Module, framework: str, num_classes: int) -> None:
        super().__init__()
        if framework not in FRAMEWORKS:
            raise ConfigError(f"unknown framework {framework!r}", hint=f"use one of {', '.join(FRAMEWORKS)}")
        self.torchvision_model = torchvision_model
        self.framework = framework
        self.model_name = framework
        self.num_classes = int(num_classes)
        self.label_offset = 1 if framework in BACKGROUND_FRAMEWORKS else 0

    @property
    def has_masks(self) -> bool:
        return self.framework == "mask-rcnn"

    def forward(self, x: Tensor, targets: list[dict[str, Tensor]] | None = None, **_: Any) -> Any:
        if x.ndim != 4:
            raise ConfigError(
                f"detection models take [B, C, H, W] images, got shape {tuple(x.shape)}",
                hint="multi-temporal input is not supported by the detection frameworks; select one time step",
            )
        if self.training and targets is None:
            raise ConfigError("the detection model needs targets in training mode (call .eval() to predict)")
        shifted = None
        if targets is not None:
            shifted = [{**t, "labels": t["labels"] + self.label_offset} for t in targets]
        out = self.torchvision_model(list(x), shifted)
        if isinstance(out, dict):
            return out
        return [{**det, "labels": det["labels"] - self.label_offset} for det in out]

    def freeze_encoder(self) -> None:
        freeze_module(self.torchvision_model.backbone.encoder)

    def freeze_decoder(self) -> None:
        """Freeze the necks (feature pyramid); the detection heads stay trainable."""
        freeze_module(self.torchvision_model.backbone.neck)

    def freeze_head(self) -> None:
        """Freeze the detection heads (RPN and RoI heads, or the RetinaNet/FCOS head)."""
        for name in ("rpn", "roi_heads", "head"):
            part = getattr(self.torchvision_model, name, None)
            if isinstance(part, nn.Module):
                freeze_module(part)


__all__ = [
    "BACKGROUND_FRAMEWORKS",
    "FRAMEWORKS",
    "DetectionBackbone",
    "NativeSizeTransform",
    "ObjectDetectionModel",
]
