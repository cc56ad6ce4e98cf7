"""torchgeo's pretrained ResNets (SSL4EO, SatlasPretrain, ...) as feature-map backbones.

``BACKBONE_REGISTRY.build("torchgeo_resnet50", weights="ResNet50_Weights.SENTINEL2_ALL_MOCO")``
builds a timm features-only ResNet (torchgeo's ResNets are timm models) with the number of input
channels of those weights, and loads them (from torch hub's cache, or downloaded; offline: an
:class:`~geoft.errors.OfflineError`). ``ckpt_path=`` loads a local copy instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import timm
import torch
import torchgeo.models
from torch import nn

from geoft.errors import ConfigError
from geoft.models.backbones.arguments import checked_arguments
from geoft.models.backbones.checkpoint import LoadReport
from geoft.models.backbones.downloads import url_download
from geoft.models.backbones.features_load import load_features_checkpoint
from geoft.models.backbones.timm import as_image_batch, reject_extra_inputs

_WEIGHT_ENUMS = {
    "resnet18": "ResNet18_Weights",
    "resnet50": "ResNet50_Weights",
    "resnet152": "ResNet152_Weights",
}


def resolve_weights(weights: str | Enum, arch: str) -> Enum:
    """The torchgeo weights enum member named by ``weights`` (``"ResNet50_Weights.SENTINEL2_ALL_MOCO"``,
    ``"SENTINEL2_ALL_MOCO"`` or the member itself), checked to be weights for ``arch``."""
    enum_cls = getattr(torchgeo.models, _WEIGHT_ENUMS[arch])
    if isinstance(weights, Enum):
        member = weights
    else:
        if not isinstance(weights, str):
            raise ConfigError(f"weights must name a torchgeo weights enum member, got {weights!r}")
        cls_name, _, member_name = weights.rpartition(".")
        owner = getattr(torchgeo.models, cls_name, None) if cls_name else enum_cls
        if owner is None or not (isinstance(owner, type) and issubclass(owner, Enum)):
            raise ConfigError(f"torchgeo.models has no weights enum {cls_name!r} (from weights={weights!r})")
        if member_name not in owner.__members__:
            raise ConfigError(
                f"{owner.__name__} has no member {member_name!r}. Available: {', '.join(owner.__members__)}"
            )
        member = owner[member_name]
    model_name = member.meta.get("model")  # type: ignore[attr-defined]
    if model_name != arch:
        raise ConfigError(
            f"weights {member} are for {model_name!r}, not {arch!r}; use torchgeo_{model_name} or other weights "
            f"(available for {arch}: {', '.join(enum_cls.__members__)})"
        )
    return member


class TorchGeoResNet(nn.Module):
    """A ResNet with torchgeo weights returning feature maps ``[B, C_i, H_i, W_i]``.

    Args:
        arch: "resnet18", "resnet50" or "resnet152".
        weights: torchgeo weights (e.g. ``"ResNet18_Weights.SENTINEL2_ALL_MOCO"``); None for random weights.
        pretrained: download/load ``weights`` (default True when weights are given).
        ckpt_path: a local copy of the weights file (wins over downloading).
        in_chans: input channels; default the weights' (``meta["in_chans"]``), else 3. Another value
            adapts the first convolution.
        out_indices: feature levels (timm's indices 0-4; default all).
    """

    output_format = "NCHW"

    def __init__(
        self,
        arch: str,
        *,
        weights: str | Enum | None = None,
        pretrained: bool = True,
        ckpt_path: str | Path | None = None,
        in_chans: int | None = None,
        out_indices: Sequence[int] | None = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if arch not in _WEIGHT_ENUMS:
            raise ConfigError(f"unknown torchgeo ResNet {arch!r}; known: {', '.join(_WEIGHT_ENUMS)}")
        self.arch = arch
        self.weights = resolve_weights(weights, arch) if weights is not None else None
        meta: dict[str, Any] = dict(self.weights.meta) if self.weights is not None else {}  # type: ignore[attr-defined]
        self.in_chans = int(in_chans if in_chans is not None else meta.get("in_chans", 3))
        self.bands: list[str] | None = list(meta["bands"]) if "bands" in meta else None
        kwargs: dict[str, Any] = {"drop_path_rate": drop_path_rate}
        if out_indices is not None:
            kwargs["out_indices"] = tuple(out_indices)
        self.model = timm.create_model(arch, features_only=True, in_chans=self.in_chans, **kwargs)
        self.out_channels: list[int] = list(self.model.feature_info.channels())
        self.reductions: list[int] = list(self.model.feature_info.reduction())
        self.load_report: LoadReport | None = None
        name = f"torchgeo_{arch}"
        if ckpt_path is not None:
            self.load_report = load_features_checkpoint(self.model, ckpt_path, name=name, first_conv="conv1")
        elif self.weights is not None and pretrained:
            url = self.weights.url  # type: ignore[attr-defined]
            path = url_download(url, what=f"torchgeo weights {self.weights}")
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.load_report = load_features_checkpoint(
                self.model, state, name=name, first_conv="conv1", source=f"{self.weights} ({url})"
            )

    def forward(self, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
        """Feature maps for ``x`` ``[B, C, H, W]`` (or ``[B, C, 1, H, W]``)."""
        reject_extra_inputs(f"torchgeo_{self.arch}", kwargs)
        return list(self.model(as_image_batch(x, f"torchgeo_{self.arch}")))

    def freeze(self) -> TorchGeoResNet:
        for param in self.parameters():
            param.requires_grad_(False)
        return self


def _builder(arch: str):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        weights: str | Enum | None = None,
        pretrained: bool = True,
        ckpt_path: str | Path | None = None,
        in_chans: int | None = None,
        out_indices: Sequence[int] | None = None,
        drop_path_rate: float = 0.0,
    ) -> TorchGeoResNet:
        return TorchGeoResNet(
            arch,
            weights=weights,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            in_chans=in_chans,
            out_indices=out_indices,
            drop_path_rate=drop_path_rate,
        )

    build.__name__ = build.__qualname__ = f"torchgeo_{arch}"
    build.__doc__ = f"torchgeo {arch} feature backbone; arguments: see :class:`TorchGeoResNet`."
    return checked_arguments(build)


torchgeo_resnet18 = _builder("resnet18")
torchgeo_resnet50 = _builder("resnet50")
torchgeo_resnet152 = _builder("resnet152")
