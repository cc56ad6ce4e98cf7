"""torchgeo's pretrained ViTs (SSL4EO-S12 MoCo/DINO/MAE/FG-MAE/CLOSP, SSL4EO-L, SoftCon DINOv2) as token backbones.

``ssl4eos12_vit_small_patch16_224_sentinel2_all_dino(bands=[...])`` builds torchgeo's ViT-S/16 (a
timm model, with ``dynamic_img_size`` so any multiple of the patch size works) and returns the tokens
``[B, 1 + h*w, D]`` (class token first) after each chosen block; the automatic necks of
:class:`~geoft.models.factories.encoder_decoder.EncoderDecoderFactory` turn them into a pyramid.
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
from geoft.models.backbones.cards.torchgeo import VITS
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

_PATCH_EMBED = "patch_embed.proj.weight"
_DROP = {"head.": "classifier head (not part of the encoder)", "fc_norm.": "classifier pooling norm"}


class TorchGeoViT(nn.Module):
    """A torchgeo ViT returning tokens ``[B, 1 + h*w, D]`` after each block in ``out_indices``.

    Args:
        arch: torchgeo's model function, e.g. ``"vit_small_patch16_224"``.
        weights: torchgeo weights (e.g. ``"ViTSmall16_Weights.SENTINEL2_ALL_DINO"``).
        pretrained: download/load ``weights``.
        ckpt_path: a local copy of the weights file, in the published layout (wins over downloading).
        bands: input bands by name (default the published ones); the patch embedding keeps the
            published weights of these bands, other bands start new.
        model_bands: TerraTorch's name for ``bands``.
        out_indices: blocks whose output is returned (default all).
        drop_path_rate: stochastic depth.
        depth: keep only the first ``depth`` blocks (the file's later blocks are dropped, reported).
    """

    output_format = "tokens"

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
        drop_path_rate: float = 0.0,
        depth: int | None = None,
    ) -> None:
        super().__init__()
        self.name = arch
        self.weights = (
            resolve_member(weights, self._weight_enums(arch), arch) if weights is not None else None
        )
        self.published_bands: list[BandLike] = published_bands(self.weights) if self.weights else []
        self.input_bands = codes_to_bands(
            requested_bands(bands, model_bands, self.published_bands), self.weights
        )
        given = bands if bands is not None else model_bands
        self.bands = list(given) if given is not None else list(published_band_codes(self.weights))  # type: ignore[arg-type]
        meta = self.weights.meta if self.weights is not None else {}  # type: ignore[attr-defined]
        self.model = self._create(arch, len(self.input_bands), int(meta.get("img_size", 224)), drop_path_rate)
        full = len(self.model.blocks)
        if depth is not None:
            if not 1 <= depth <= full:
                raise ConfigError(f"{arch}: depth must be 1-{full}, got {depth}")
            self.model.blocks = self.model.blocks[:depth]
        depth = len(self.model.blocks)
        self.out_indices = list(out_indices) if out_indices is not None else list(range(depth))
        bad = [i for i in self.out_indices if not -depth <= i < depth]
        if bad:
            raise ConfigError(f"{arch}: out_indices {bad} out of range for {depth} blocks")
        self.out_indices = [i % depth for i in self.out_indices]
        self.embed_dim = int(self.model.embed_dim)
        self.out_channels: list[int] = [self.embed_dim] * len(self.out_indices)
        self.patch_size = int(self.model.patch_embed.patch_size[0])
        self.load_report: LoadReport | None = None
        loaded = weights_state(self.weights, ckpt_path, pretrained, arch)
        if loaded is not None:
            self.load_report = self._load(*loaded)

    @staticmethod
    def _weight_enums(arch: str) -> tuple[type[Enum], ...]:
        enums = {v[1].split(".")[0] for v in VITS.values() if v[0] == arch}
        return tuple(getattr(torchgeo.models, e) for e in sorted(enums))

    def _create(self, arch: str, in_chans: int, img_size: int, drop_path_rate: float) -> nn.Module:
        # torchgeo's ViT builders are timm models; no weights here: the published file is loaded below.
        return getattr(torchgeo.models, arch)(
            None,
            in_chans=in_chans,
            img_size=img_size,
            num_classes=0,
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
        )

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
        return load_published(self.model, state, report, self.name, _DROP, len(self.model.blocks))

    def forward(self, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
        """Tokens ``[B, 1 + h*w, D]`` (class token first) for ``x`` ``[B, C, H, W]``."""
        reject_extra_inputs(self.name, kwargs)
        x = as_image_batch(x, self.name)
        outs = self.model.forward_intermediates(
            x,
            indices=self.out_indices,
            return_prefix_tokens=True,
            norm=False,
            output_fmt="NLC",
            intermediates_only=True,
        )
        return [torch.cat([prefix[:, :1], tokens], dim=1) for tokens, prefix in outs]

    def freeze(self) -> TorchGeoViT:
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
        drop_path_rate: float = 0.0,
        depth: int | None = None,
    ) -> TorchGeoViT:
        return TorchGeoViT(
            arch,
            weights=weights,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            bands=bands,
            model_bands=model_bands,
            out_indices=out_indices,
            drop_path_rate=drop_path_rate,
            depth=depth,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"torchgeo {arch} with weights {default_weights}; arguments: see :class:`TorchGeoViT`."
    return checked_arguments(build)


for _name, (_arch, _weights) in VITS.items():
    globals()[_name] = _builder(_arch, _name, _weights)
