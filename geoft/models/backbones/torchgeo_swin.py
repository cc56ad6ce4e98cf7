"""SatlasPretrain's Swin Transformer V2 (torchgeo's ``swin_v2_t`` / ``swin_v2_b``) as a feature pyramid.

``satlas_swin_b_sentinel2_si_ms(bands=[...])`` builds torchvision's Swin V2 through torchgeo with a
patch embedding of one input channel per band, loads the published file (torchvision's state-dict
layout) with the patch embedding cut down to those bands, and returns the four stage outputs as
``[B, C_i, H/4·2^-i, W/4·2^-i]`` (torchvision's Swin computes channels-last; they are permuted).
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
from geoft.models.backbones.cards.torchgeo import SWINS
from geoft.models.backbones.checkpoint import LoadReport, strip_prefix
from geoft.models.backbones.timm import as_image_batch, reject_extra_inputs
from geoft.models.backbones.torchgeo_weights import (
    codes_to_bands,
    load_published,
    published_band_codes,
    published_bands,
    requested_bands,
    resolve_member,
    select_band_channels,
    weights_state,
)

_PATCH_EMBED = "features.0.0.weight"
_DROP = {"head.": "classifier head (not part of the encoder)", "norm.": "final norm after the last stage"}
_ENUMS = {"swin_v2_t": "Swin_V2_T_Weights", "swin_v2_b": "Swin_V2_B_Weights"}
# torchvision's ``features``: patch embedding, stage 1, merge, stage 2, merge, stage 3, merge, stage 4.
_STAGE_POSITIONS = (1, 3, 5, 7)


class _Features(nn.Module):
    """Holds torchvision's ``features`` so the state-dict keys stay ``features.*`` as published."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features


class SatlasSwin(nn.Module):
    """A Satlas Swin V2 returning the stage outputs in ``out_indices`` as ``[B, C, H, W]`` maps.

    Args:
        arch: ``"swin_v2_t"`` or ``"swin_v2_b"``.
        weights: torchgeo weights (e.g. ``"Swin_V2_B_Weights.SENTINEL2_SI_MS_SATLAS"``).
        pretrained: download/load ``weights``.
        ckpt_path: a local copy of the weights file, in the published layout (wins over downloading).
        bands: input bands by name (default the published ones).
        model_bands: TerraTorch's name for ``bands``.
        out_indices: stages 0-3 to return (default all four).
    """

    output_format = "NCHW"

    def __init__(
        self,
        arch: str,
        *,
        weights: str | Enum | None,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if arch not in _ENUMS:
            raise ConfigError(f"unknown Satlas Swin {arch!r}; known: {', '.join(_ENUMS)}")
        self.name = arch
        enum_cls = getattr(torchgeo.models, _ENUMS[arch])
        self.weights = resolve_member(weights, (enum_cls,), arch) if weights is not None else None
        self.published_bands: list[BandLike] = published_bands(self.weights) if self.weights else []
        self.input_bands = codes_to_bands(
            requested_bands(bands, model_bands, self.published_bands), self.weights
        )
        given = bands if bands is not None else model_bands
        self.bands = list(given) if given is not None else list(published_band_codes(self.weights))  # type: ignore[arg-type]
        swin = getattr(torchgeo.models, arch)(None)
        embed = swin.features[0][0]
        # As torchgeo does for Satlas weights: a patch embedding with the input's channels.
        swin.features[0][0] = nn.Conv2d(
            len(self.input_bands), embed.out_channels, kernel_size=embed.kernel_size, stride=embed.stride
        )
        self.model = _Features(swin.features)
        self.out_indices = list(out_indices) if out_indices is not None else [0, 1, 2, 3]
        if any(not 0 <= i < 4 for i in self.out_indices):
            raise ConfigError(f"{arch}: out_indices must be stages 0-3, got {self.out_indices}")
        widths = [embed.out_channels * 2**i for i in range(4)]
        self.out_channels: list[int] = [widths[i] for i in self.out_indices]
        self.reductions: list[int] = [4 * 2**i for i in self.out_indices]
        self.load_report: LoadReport | None = None
        loaded = weights_state(self.weights, ckpt_path, pretrained, arch)
        if loaded is not None:
            self.load_report = self._load(*loaded)

    def _load(self, state: dict[str, torch.Tensor], source: str) -> LoadReport:
        report = LoadReport(source=source)
        own = self.model.state_dict()
        state = dict(strip_prefix(state, set(own)))
        if _PATCH_EMBED in state and self.published_bands:
            state[_PATCH_EMBED] = select_band_channels(
                state[_PATCH_EMBED],
                self.published_bands,
                self.input_bands,
                own[_PATCH_EMBED],
                _PATCH_EMBED,
                report,
            )
        return load_published(self.model, state, report, self.name, _DROP)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
        """Stage outputs ``[B, C_i, H_i, W_i]`` for ``x`` ``[B, C, H, W]``."""
        reject_extra_inputs(self.name, kwargs)
        x = as_image_batch(x, self.name)
        wanted = {_STAGE_POSITIONS[i]: i for i in self.out_indices}
        outs: dict[int, torch.Tensor] = {}
        for position, layer in enumerate(self.model.features[: max(wanted) + 1]):
            x = layer(x)
            if position in wanted:
                outs[wanted[position]] = x.permute(0, 3, 1, 2)
        return [outs[i] for i in self.out_indices]

    def freeze(self) -> SatlasSwin:
        for param in self.parameters():
            param.requires_grad_(False)
        return self


def _builder(arch: str, name: str, default_weights: str):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        weights: str | Enum | None = default_weights,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        out_indices: Sequence[int] | None = None,
    ) -> SatlasSwin:
        return SatlasSwin(
            arch,
            weights=weights,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            bands=bands,
            model_bands=model_bands,
            out_indices=out_indices,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Satlas {arch} with weights {default_weights}; arguments: see :class:`SatlasSwin`."
    return checked_arguments(build)


for _name, (_arch, _weights) in SWINS.items():
    globals()[_name] = _builder(_arch, _name, _weights)
