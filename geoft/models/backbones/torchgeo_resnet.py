"""torchgeo's pretrained ResNets (SSL4EO-S12, SSL4EO-L, SeCo, SatlasPretrain, ...) as feature pyramids.

``ssl4eos12_resnet50_sentinel2_all_moco(bands=["RED", "GREEN", "BLUE"], ckpt_path=...)`` builds
torchgeo's ResNet-50 (a timm model, features only) with one input channel per band, and loads the
published file of ``ResNet50_Weights.SENTINEL2_ALL_MOCO`` with the first convolution cut down to
those bands. The generic ``torchgeo_resnet18|50|152(weights=...)`` builders take any member.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import torch
import torchgeo.models
from torch import nn

from geoft.errors import ConfigError
from geoft.models.backbones.arguments import checked_arguments
from geoft.models.backbones.bands import BandLike
from geoft.models.backbones.cards.torchgeo import RESNETS
from geoft.models.backbones.checkpoint import LoadReport, strip_prefix
from geoft.models.backbones.features_load import load_features_checkpoint
from geoft.models.backbones.timm import as_image_batch, reject_extra_inputs
from geoft.models.backbones.torchgeo_weights import (
    codes_to_bands,
    published_band_codes,
    published_bands,
    requested_bands,
    resolve_member,
    select_band_channels,
    weights_state,
)

_WEIGHT_ENUMS = {
    "resnet18": "ResNet18_Weights",
    "resnet50": "ResNet50_Weights",
    "resnet152": "ResNet152_Weights",
}
_FIRST_CONV = "conv1.weight"


def resolve_weights(weights: str | Enum, arch: str) -> Enum:
    """The torchgeo weights enum member named by ``weights`` (``"ResNet50_Weights.SENTINEL2_ALL_MOCO"``,
    ``"SENTINEL2_ALL_MOCO"`` or the member itself), checked to be weights for ``arch``."""
    enum_cls = getattr(torchgeo.models, _WEIGHT_ENUMS[arch])
    if isinstance(weights, str) and "." in weights:
        owner = getattr(torchgeo.models, weights.rpartition(".")[0], None)
        if owner is None or not (isinstance(owner, type) and issubclass(owner, Enum)):
            raise ConfigError(f"torchgeo.models has no weights enum {weights.rpartition('.')[0]!r}")
        if weights.rpartition(".")[2] in owner.__members__ and owner is not enum_cls:
            other = next((a for a, e in _WEIGHT_ENUMS.items() if e == owner.__name__), owner.__name__)
            raise ConfigError(
                f"weights {weights} are for {other!r}, not {arch!r}; use torchgeo_{other} or other weights "
                f"(available for {arch}: {', '.join(enum_cls.__members__)})"
            )
    return resolve_member(weights, (enum_cls,), f"torchgeo_{arch}")


class TorchGeoResNet(nn.Module):
    """A torchgeo ResNet returning feature maps ``[B, C_i, H_i, W_i]`` (strides 2, 4, 8, 16, 32).

    Args:
        arch: "resnet18", "resnet50" or "resnet152".
        weights: torchgeo weights (e.g. ``"ResNet18_Weights.SENTINEL2_ALL_MOCO"``); None: random weights.
        pretrained: download/load ``weights``.
        ckpt_path: a local copy of the weights file, in the published layout (wins over downloading).
        bands: input bands by name (default: the published bands); the first convolution keeps the
            published weights of these bands, other bands start new.
        model_bands: TerraTorch's name for ``bands``.
        in_chans: input channels without naming bands (the first convolution is adapted by timm's
            ``adapt_input_conv``); default the number of bands.
        out_indices: feature levels 0-4 (default all).
    """

    output_format = "NCHW"

    def __init__(
        self,
        arch: str,
        *,
        weights: str | Enum | None = None,
        pretrained: bool = True,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        in_chans: int | None = None,
        out_indices: Sequence[int] | None = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if arch not in _WEIGHT_ENUMS:
            raise ConfigError(f"unknown torchgeo ResNet {arch!r}; known: {', '.join(_WEIGHT_ENUMS)}")
        self.arch = arch
        self.name = f"torchgeo_{arch}"
        self.weights = resolve_weights(weights, arch) if weights is not None else None
        self.published_bands: list[BandLike] = published_bands(self.weights) if self.weights else []
        # bands: the input channels as the user (or, by default, torchgeo's enum) writes them;
        # input_bands: the same as geoft band names, matched against the published bands.
        self.bands: list[BandLike] | None = None
        self.input_bands: list[BandLike] | None = None
        if in_chans is not None and bands is None and model_bands is None:
            self.in_chans = int(in_chans)
        elif self.weights is None and bands is None and model_bands is None:
            self.in_chans = 3
        else:
            given = bands if bands is not None else model_bands
            self.input_bands = codes_to_bands(
                requested_bands(bands, model_bands, self.published_bands), self.weights
            )
            self.bands = list(given) if given is not None else list(published_band_codes(self.weights))
            self.in_chans = len(self.input_bands)
            if in_chans is not None and in_chans != self.in_chans:
                raise ConfigError(f"{self.name}: in_chans={in_chans} but {self.in_chans} bands were given")
        kwargs: dict[str, Any] = {"drop_path_rate": drop_path_rate}
        if out_indices is not None:
            # timm's ResNets have five feature levels: the stem and four stages
            if any(not -5 <= i < 5 for i in out_indices):
                raise ConfigError(
                    f"{self.name}: out_indices {list(out_indices)} out of range; a ResNet has "
                    "feature levels 0-4 (stem, then four stages)"
                )
            kwargs["out_indices"] = tuple(out_indices)
        # torchgeo's ResNet builders are timm models; weights=None: the published file is loaded below.
        build = getattr(torchgeo.models, arch)
        self.model = build(None, in_chans=self.in_chans, features_only=True, **kwargs)
        self.out_channels: list[int] = list(self.model.feature_info.channels())
        self.reductions: list[int] = list(self.model.feature_info.reduction())
        self.load_report: LoadReport | None = None
        loaded = weights_state(self.weights, ckpt_path, pretrained and self.weights is not None, self.name)
        if loaded is not None:
            self.load_report = self._load(*loaded)

    def _load(self, state: dict[str, torch.Tensor], source: str) -> LoadReport:
        report = LoadReport(source=source)
        state = dict(strip_prefix(state, {_FIRST_CONV, "fc.weight"}))
        first_conv: str | None = "conv1"
        if self.input_bands is not None and self.published_bands and _FIRST_CONV in state:
            own = self.model.state_dict()[_FIRST_CONV]
            state[_FIRST_CONV] = select_band_channels(
                state[_FIRST_CONV], self.published_bands, self.input_bands, own, _FIRST_CONV, report
            )
            first_conv = None
        loaded = load_features_checkpoint(
            self.model, state, name=self.name, first_conv=first_conv, source=source
        )
        loaded.adapted = {**report.adapted, **loaded.adapted}
        return loaded

    def forward(self, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
        """Feature maps for ``x`` ``[B, C, H, W]`` (or ``[B, C, 1, H, W]``)."""
        reject_extra_inputs(self.name, kwargs)
        return list(self.model(as_image_batch(x, self.name)))

    def freeze(self) -> TorchGeoResNet:
        for param in self.parameters():
            param.requires_grad_(False)
        return self


def _builder(arch: str, name: str, default_weights: str | None, default_pretrained: bool):  # noqa: ANN202
    def build(
        *,
        weights: str | Enum | None = default_weights,
        pretrained: bool = default_pretrained,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        in_chans: int | None = None,
        out_indices: Sequence[int] | None = None,
        drop_path_rate: float = 0.0,
    ) -> TorchGeoResNet:
        return TorchGeoResNet(
            arch,
            weights=weights,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            bands=bands,
            model_bands=model_bands,
            in_chans=in_chans,
            out_indices=out_indices,
            drop_path_rate=drop_path_rate,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"torchgeo {arch} with weights {default_weights}; arguments: see :class:`TorchGeoResNet`."
    return checked_arguments(build)


torchgeo_resnet18 = _builder("resnet18", "torchgeo_resnet18", None, True)
torchgeo_resnet50 = _builder("resnet50", "torchgeo_resnet50", None, True)
torchgeo_resnet152 = _builder("resnet152", "torchgeo_resnet152", None, True)

for _name, (_arch, _weights) in RESNETS.items():
    globals()[_name] = _builder(_arch, _name, _weights, False)
