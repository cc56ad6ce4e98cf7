"""ObjectDetectionModelFactory: any geoft backbone + necks inside torchvision's detection frameworks.

Arguments follow the reference (TerraTorch), so its configs carry over: ``framework`` is one of
``faster-rcnn``, ``retinanet``, ``fcos``, ``mask-rcnn``; ``backbone_*`` keywords go to the backbone and
``framework_*`` keywords to the torchvision model (``framework_min_size``, ``framework_max_size``,
``framework_box_score_thresh``...). Differences, on purpose:

* ``num_classes`` counts object classes only; the background class of Faster/Mask R-CNN is added here.
* Without ``framework_min_size`` chips are not resized, neither in training nor in inference (the
  reference skips the resize in training only, so objects change size between the two). With it,
  torchvision resizes every image so that its short side is ``min_size`` (long side at most ``max_size``).
* ``necks`` left unset gets what the backbone needs: a ViT's tokens go through SelectIndices (4 levels),
  ReshapeTokensToImage and LearnedInterpolateToPyramidal; then every backbone gets a
  FeaturePyramidNetworkNeck.
* The input normalisation inside torchvision (``image_mean``/``image_std``) is the identity for the
  backbone's band count: normalising is the datamodule's job.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from geoft.errors import ConfigError
from geoft.models.factories._common import check_task, merge_kwargs, split_prefixed
from geoft.models.factories.encoder_decoder import backbone_patch_size, build_backbone
from geoft.models.necks import NeckChain, build_neck_list
from geoft.models.object_detection_model import (
    FRAMEWORKS,
    DetectionBackbone,
    NativeSizeTransform,
    ObjectDetectionModel,
)
from geoft.task_kinds import TaskKind

TASKS = (TaskKind.OBJECT_DETECTION,)
# Base anchor size per pyramid level (finest first), as in the reference.
DEFAULT_ANCHORS: dict[str, tuple[int, ...]] = {
    "faster-rcnn": (32, 64, 128, 256, 512),
    "mask-rcnn": (32, 64, 128, 256, 512),
    "retinanet": (16, 32, 64, 128, 256, 512),
    "fcos": (8, 16, 32, 64, 128, 256),
}
_SET_BY_FACTORY = {
    "backbone", "num_classes", "rpn_anchor_generator", "anchor_generator", "box_roi_pool", "mask_roi_pool",
    "head", "image_mean", "image_std",
}  # fmt: skip


def default_detection_necks(encoder: nn.Module) -> list[dict[str, Any]]:
    """Necks that turn the backbone's features into a feature pyramid of equal channels."""
    specs: list[dict[str, Any]] = []
    if getattr(encoder, "output_format", "NCHW") == "tokens":
        n = len(encoder.out_channels)
        patch = getattr(encoder, "patch_size", None)
        tubelet = patch[0] if isinstance(patch, (list, tuple)) and len(patch) == 3 else 1
        frames = max(1, int(getattr(encoder, "num_frames", 1)) // int(tubelet))
        specs.append(
            {"name": "SelectIndices", "indices": [max(0, round((i + 1) * n / 4) - 1) for i in range(4)]}
        )
        specs.append({"name": "ReshapeTokensToImage", "effective_time_dim": frames})
        specs.append({"name": "LearnedInterpolateToPyramidal"})
    specs.append({"name": "FeaturePyramidNetworkNeck"})
    return specs


def input_channels(encoder: nn.Module) -> int | None:
    """Bands the backbone reads: the input channels of its first convolution (patch embedding or stem)."""
    for module in encoder.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            return int(module.in_channels)
    return None


def _anchors(framework: str, levels: int, sizes: Sequence[int] | None) -> AnchorGenerator:
    base = tuple(int(s) for s in sizes) if sizes is not None else DEFAULT_ANCHORS[framework]
    if len(base) < levels:
        raise ConfigError(
            f"anchor_sizes has {len(base)} sizes but the feature pyramid has {levels} levels",
            hint="give one base anchor size (pixels) per pyramid level, finest level first",
        )
    base = base[:levels]
    if framework == "retinanet":  # three scales per level (2^0, 2^(1/3), 2^(2/3)), as RetinaNet's paper
        scales = tuple(tuple(round(s * 2 ** (k / 3)) for k in range(3)) for s in base)
        return AnchorGenerator(scales, ((0.5, 1.0, 2.0),) * levels)
    if framework == "fcos":
        return AnchorGenerator(tuple((s,) for s in base), ((1.0,),) * levels)
    return AnchorGenerator(tuple((s,) for s in base), ((0.5, 1.0, 2.0),) * levels)


def _check_framework_kwargs(cls: Callable[..., Any], kwargs: Mapping[str, Any], framework: str) -> None:
    params = inspect.signature(cls.__init__).parameters
    allowed = {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD} - {"self"} - _SET_BY_FACTORY
    allowed |= {"fixed_size", "size_divisible"}  # passed on to GeneralizedRCNNTransform
    unknown = sorted(set(kwargs) - allowed)
    taken = sorted(set(kwargs) & _SET_BY_FACTORY)
    if taken:
        raise ConfigError(f"framework_{taken[0]} is set by ObjectDetectionModelFactory and cannot be given")
    if unknown:
        raise ConfigError(
            f"{framework} ({cls.__name__}) got unknown argument(s) {['framework_' + k for k in unknown]}",
            hint=f"framework_* arguments are those of torchvision's {cls.__name__}: "
            + ", ".join(sorted(allowed)),
        )


class ObjectDetectionModelFactory:
    """Builds :class:`~geoft.models.object_detection_model.ObjectDetectionModel`."""

    def build_model(
        self,
        task: str,
        backbone: str | nn.Module | None = None,
        framework: str | None = None,
        num_classes: int | None = None,
        necks: Sequence[Mapping[str, Any]] | None = None,
        in_channels: int | None = None,
        anchor_sizes: Sequence[int] | None = None,
        backbone_kwargs: Mapping[str, Any] | None = None,
        framework_kwargs: Mapping[str, Any] | None = None,
        **prefixed: Any,
    ) -> ObjectDetectionModel:
        """Build a detector for ``task`` ``object_detection``.

        Args:
            backbone: a ``BACKBONE_REGISTRY`` name or a module with ``out_channels``.
            framework: ``faster-rcnn``, ``retinanet``, ``fcos`` or ``mask-rcnn`` (instance segmentation).
            num_classes: object classes, without background.
            necks: ``[{"name": ...}, ...]`` ending in equal channels per level; None: see the module doc.
            in_channels: bands of the input (default: read from the backbone's first convolution).
            anchor_sizes: base anchor size in pixels per pyramid level (default: the reference's), e.g.
                ``[8, 16, 32, 64, 128]`` for small objects.
            backbone_kwargs / framework_kwargs: arguments of each part; win over ``backbone_*`` /
                ``framework_*`` keywords.
        """
        known = [p for p in inspect.signature(self.build_model).parameters if p != "prefixed"]
        check_task(task, TASKS, factory="ObjectDetectionModelFactory")
        if backbone is None or framework is None:
            raise ConfigError(
                "ObjectDetectionModelFactory needs backbone and framework",
                hint="e.g. model_args: {backbone: timm_resnet50, framework: faster-rcnn, num_classes: 1}",
            )
        if framework not in FRAMEWORKS:
            raise ConfigError(f"unknown framework {framework!r}", hint=f"use one of {', '.join(FRAMEWORKS)}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive int (object classes), got {num_classes!r}")
        routed = split_prefixed(prefixed, ("backbone", "framework"), known, "ObjectDetectionModelFactory")
        b_kwargs = merge_kwargs(backbone_kwargs, routed["backbone"], "backbone")
        f_kwargs = merge_kwargs(framework_kwargs, routed["framework"], "framework")

        encoder = build_backbone(backbone, b_kwargs)
        specs = default_detection_necks(encoder) if necks is None else [dict(s) for s in necks]
        neck_list, channels = build_neck_list(specs, encoder.out_channels)
        body = DetectionBackbone(encoder, NeckChain(neck_list, channels), channels)
        bands = in_channels if in_channels is not None else input_channels(encoder)
        if bands is None:
            raise ConfigError(
                f"cannot tell how many bands backbone {type(encoder).__name__} reads", hint="set in_channels"
            )
        patch = backbone_patch_size(encoder)
        multiple = math.lcm(32, *(patch if isinstance(patch, tuple) else (patch or 1,))[-2:])
        detector = self._framework(framework, body, num_classes, anchor_sizes, bands, multiple, f_kwargs)
        return ObjectDetectionModel(detector, framework, num_classes)

    @staticmethod
    def _framework(
        framework: str,
        body: DetectionBackbone,
        num_classes: int,
        anchor_sizes: Sequence[int] | None,
        bands: int,
        multiple: int,
        kwargs: Mapping[str, Any],
    ) -> nn.Module:
        kwargs = dict(kwargs)
        levels = len(body.level_names)
        anchors = _anchors(framework, levels, anchor_sizes)
        identity = {"image_mean": [0.0] * bands, "image_std": [1.0] * bands}
        kwargs.setdefault("size_divisible", multiple)
        native = "min_size" not in kwargs
        cls: Any
        if framework in ("faster-rcnn", "mask-rcnn"):
            cls = FasterRCNN if framework == "faster-rcnn" else MaskRCNN
            _check_framework_kwargs(cls, kwargs, framework)
            parts: dict[str, Any] = {
                "rpn_anchor_generator": anchors,
                "box_roi_pool": MultiScaleRoIAlign(body.level_names, output_size=7, sampling_ratio=2),
            }
            if framework == "mask-rcnn":
                parts["mask_roi_pool"] = MultiScaleRoIAlign(
                    body.level_names, output_size=14, sampling_ratio=2
                )
            model = cls(body, num_classes + 1, **parts, **identity, **kwargs)
        elif framework == "retinanet":
            _check_framework_kwargs(RetinaNet, kwargs, framework)
            norm = partial(nn.GroupNorm, 32) if body.out_channels % 32 == 0 else None
            head = RetinaNetHead(
                body.out_channels, anchors.num_anchors_per_location()[0], num_classes, norm_layer=norm
            )
            model = RetinaNet(body, num_classes, anchor_generator=anchors, head=head, **identity, **kwargs)
        else:
            _check_framework_kwargs(FCOS, kwargs, framework)
            model = FCOS(body, num_classes, anchor_generator=anchors, **identity, **kwargs)
        if native:
            old: GeneralizedRCNNTransform = model.transform
            model.transform = NativeSizeTransform(
                old.min_size, old.max_size, old.image_mean, old.image_std, old.size_divisible, old.fixed_size
            )
        return model


__all__ = ["DEFAULT_ANCHORS", "ObjectDetectionModelFactory", "default_detection_necks", "input_channels"]
