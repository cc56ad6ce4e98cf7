"""Wavelength-conditioned ViTs from torchgeo: DOFA, CopernicusFM and Panopticon, as token backbones.

Their patch embedding is generated from each input band's wavelength, so they take any bands; users
name the bands and the wavelengths come from :mod:`geoft.models.backbones.band_wavelengths`.
Each returns tokens ``[B, 1 + h*w, D]`` (class token first) after the blocks in ``out_indices``;
the position embedding (published for 224 px) is resampled to the input's patch grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import torch
import torchgeo.models
from timm.layers import resample_abs_pos_embed
from torch import nn

from geoft.errors import ConfigError
from geoft.models.backbones.arguments import checked_arguments
from geoft.models.backbones.band_wavelengths import (
    copernicusfm_spectra_nm,
    dofa_wavelengths_um,
    panopticon_channel_ids,
)
from geoft.models.backbones.bands import BandLike, normalize_bands
from geoft.models.backbones.checkpoint import LoadReport
from geoft.models.backbones.timm import as_image_batch, reject_extra_inputs
from geoft.models.backbones.torchgeo_weights import load_published, resolve_member, weights_state

_HEAD = {"head.": "classifier head (not part of the encoder)", "fc_norm.": "classifier pooling norm"}


def _resampled(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    side = round((pos_embed.shape[1] - 1) ** 0.5)
    if (side, side) == grid:
        return pos_embed
    return resample_abs_pos_embed(pos_embed, list(grid), old_size=[side, side], num_prefix_tokens=1)


class SpectralViT(nn.Module):
    """Common part: bands -> wavelengths, block selection, loading, tokens out.

    Subclasses set ``self.blocks`` and implement :meth:`embed` (tokens with the class token first).
    """

    output_format = "tokens"
    family = ""

    def __init__(
        self,
        name: str,
        bands: Sequence[BandLike] | None,
        model_bands: Sequence[BandLike] | None,
        weights: Enum | None,
    ) -> None:
        super().__init__()
        self.name = name
        self.weights = weights
        if bands is not None and model_bands is not None:
            raise ConfigError("give bands or model_bands (TerraTorch's name for it), not both")
        chosen = bands if bands is not None else model_bands
        if chosen is None:
            raise ConfigError(
                f"{name} takes any bands but needs their names: pass bands=[...] in input order "
                "(e.g. ['BLUE', 'GREEN', 'RED', 'NIR_BROAD']); the wavelengths follow from the names."
            )
        self.bands: list[BandLike] = normalize_bands(list(chosen))
        self.load_report: LoadReport | None = None

    def _finish(self, out_indices: Sequence[int] | None, depth: int | None, embed_dim: int) -> None:
        full = len(self.blocks)
        if depth is not None:
            if not 1 <= depth <= full:
                raise ConfigError(f"{self.name}: depth must be 1-{full}, got {depth}")
            self.blocks = self.blocks[:depth]
        n = len(self.blocks)
        self.out_indices = [i % n for i in out_indices] if out_indices is not None else list(range(n))
        if out_indices is not None and any(not -n <= i < n for i in out_indices):
            raise ConfigError(f"{self.name}: out_indices {list(out_indices)} out of range for {n} blocks")
        self.out_channels: list[int] = [embed_dim] * len(self.out_indices)

    def _load(self, loaded: tuple[dict[str, torch.Tensor], str] | None, drop: dict[str, str]) -> None:
        if loaded is None:
            return
        state, source = loaded
        report = LoadReport(source=source)
        state = self._adapt(dict(state), report)
        self.load_report = load_published(self, state, report, self.name, {**_HEAD, **drop}, len(self.blocks))

    def _adapt(self, state: dict[str, torch.Tensor], report: LoadReport) -> dict[str, torch.Tensor]:
        return state

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
        """Tokens ``[B, 1 + h*w, D]`` for ``x`` ``[B, len(bands), H, W]``."""
        reject_extra_inputs(self.name, kwargs)
        x = as_image_batch(x, self.name)
        if x.shape[1] != len(self.bands):
            raise ConfigError(
                f"{self.name} was built for {len(self.bands)} bands but got {x.shape[1]} channels"
            )
        tokens = self.embed(x)
        wanted, outs = set(self.out_indices), {}
        for i, block in enumerate(self.blocks[: max(self.out_indices) + 1]):
            tokens = block(tokens)
            if i in wanted:
                outs[i] = tokens
        return [outs[i] for i in self.out_indices]

    def freeze(self) -> SpectralViT:
        for param in self.parameters():
            param.requires_grad_(False)
        return self


class DOFAEncoder(SpectralViT):
    """DOFA (torchgeo's ``dofa_<size>_patch16_224``); wavelengths in µm from the band names."""

    patch_size = 16

    def __init__(
        self,
        size: str,
        *,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        weights: str | Enum | None = None,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        out_indices: Sequence[int] | None = None,
        depth: int | None = None,
        img_size: int | None = None,
    ) -> None:
        enums = {"base": "DOFABase16_Weights", "large": "DOFALarge16_Weights"}
        name = f"dofa_{size}_patch16_224"
        member = None
        if weights is not None:
            if size not in enums:
                raise ConfigError(f"{name} has no published weights; pass ckpt_path=... or pretrained=False")
            member = resolve_member(weights, (getattr(torchgeo.models, enums[size]),), name)
        # the position grid is resampled to each input's size, so img_size (the reference's) is only checked
        if img_size is not None and (img_size < self.patch_size or img_size % self.patch_size):
            raise ConfigError(f"{name}: img_size must be a multiple of {self.patch_size}, got {img_size}")
        super().__init__(name, bands, model_bands, member)
        dofa = getattr(torchgeo.models, name)()  # no weights: the published file is loaded below
        self.patch_embed, self.cls_token, self.pos_embed = dofa.patch_embed, dofa.cls_token, dofa.pos_embed
        self.blocks = dofa.blocks
        self.register_buffer("wavelengths", torch.tensor(dofa_wavelengths_um(self.bands)), persistent=False)
        self._finish(out_indices, depth, dofa.embed_dim)
        if pretrained and member is None and ckpt_path is None:
            raise ConfigError(f"{name} has no published weights; pass ckpt_path=... or pretrained=False")
        self._load(weights_state(member, ckpt_path, pretrained, name), {"norm.": "final norm (unused)"})

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.patch_embed(x, self.wavelengths)
        pos = _resampled(self.pos_embed, (x.shape[-2] // 16, x.shape[-1] // 16))
        cls = (self.cls_token + pos[:, :1]).expand(x.shape[0], -1, -1)
        return torch.cat([cls, tokens + pos[:, 1:]], dim=1)


class CopernicusFMEncoder(SpectralViT):
    """CopernicusFM ViT-B (torchgeo's ``copernicusfm_base``), spectral mode: wavelengths and bandwidths
    in nm from the band names; location, area and time are unknown (its learned tokens are used)."""

    patch_size = 16

    def __init__(
        self,
        *,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        weights: str | Enum | None = "CopernicusFM_Base_Weights.CopernicusFM_ViT",
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        out_indices: Sequence[int] | None = None,
        depth: int | None = None,
    ) -> None:
        enum = torchgeo.models.CopernicusFM_Base_Weights
        member = resolve_member(weights, (enum,), "copernicusfm_base") if weights is not None else None
        super().__init__("copernicusfm_base", bands, model_bands, member)
        cfm = torchgeo.models.copernicusfm_base(None)
        for part in ("patch_embed_spectral", "cls_token", "pos_embed", "coord_fc", "scale_fc", "time_fc"):
            setattr(self, part, getattr(cfm, part))
        for part in ("coord_token", "scale_token", "time_token"):
            setattr(self, part, getattr(cfm, part))
        self.blocks = cfm.blocks
        waves, widths = copernicusfm_spectra_nm(self.bands)
        self.register_buffer("wavelengths", torch.tensor(waves), persistent=False)
        self.register_buffer("bandwidths", torch.tensor(widths), persistent=False)
        self._finish(out_indices, depth, cfm.cls_token.shape[-1])
        drop = {"patch_embed_variable.": "variable-mode patch embedding (language-embedding inputs; unused)"}
        self._load(weights_state(member, ckpt_path, pretrained, self.name), drop)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed_spectral(x, wavelengths=self.wavelengths, bandwidths=self.bandwidths)
        pos = _resampled(self.pos_embed, (x.shape[-2] // 16, x.shape[-1] // 16))
        pos = (
            pos
            + self.coord_fc(self.coord_token)
            + self.scale_fc(self.scale_token)
            + self.time_fc(self.time_token)
        )
        cls = (self.cls_token + pos[:, :1]).expand(x.shape[0], -1, -1)
        return torch.cat([cls, tokens + pos[:, 1:]], dim=1)


class PanopticonEncoder(SpectralViT):
    """Panopticon ViT-B/14 (torchgeo's ``Panopticon``): channel ids from the band names (optical: nm,
    SAR: Panopticon's negative ids)."""

    patch_size = 14

    def __init__(
        self,
        *,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        weights: str | Enum | None = "Panopticon_Weights.VIT_BASE14",
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        out_indices: Sequence[int] | None = None,
        depth: int | None = None,
    ) -> None:
        enum = torchgeo.models.Panopticon_Weights
        member = resolve_member(weights, (enum,), "panopticon_vitb14") if weights is not None else None
        super().__init__("panopticon_vitb14", bands, model_bands, member)
        vit = torchgeo.models.Panopticon(img_size=224).model  # timm DINOv2 ViT with Panopticon's embedding
        self.patch_embed, self.cls_token, self.pos_embed = vit.patch_embed, vit.cls_token, vit.pos_embed
        self.blocks, self.norm = vit.blocks, vit.norm
        self.register_buffer(
            "channel_ids", torch.tensor(panopticon_channel_ids(self.bands)), persistent=False
        )
        self._finish(out_indices, depth, vit.embed_dim)
        drop = {"mask_token": "DINOv2 mask token (pre-training only)"}
        self._load(weights_state(member, ckpt_path, pretrained, self.name), drop)

    def _adapt(self, state: dict[str, torch.Tensor], report: LoadReport) -> dict[str, torch.Tensor]:
        published = state.get("pos_embed")
        if published is not None and published.shape != self.pos_embed.shape:
            # Published for 518 px (37x37 patches); torchgeo resamples it to 224 px the same way.
            state["pos_embed"] = _resampled(published, (16, 16))
            report.adapted["pos_embed"] = f"{list(published.shape)} resampled to {list(self.pos_embed.shape)}"
        return state

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        ids = self.channel_ids.clone().expand(x.shape[0], -1)  # Panopticon edits its ids in place
        tokens = self.patch_embed({"imgs": x, "chn_ids": ids.clone()})
        pos = _resampled(self.pos_embed, (x.shape[-2] // 14, x.shape[-1] // 14))
        cls = (self.cls_token + pos[:, :1]).expand(x.shape[0], -1, -1)
        return torch.cat([cls, tokens + pos[:, 1:]], dim=1)


def _builder(cls: type[SpectralViT], name: str, **fixed: Any):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        weights: str | Enum | None = fixed.get("weights"),
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        out_indices: Sequence[int] | None = None,
        depth: int | None = None,
    ) -> SpectralViT:
        extra = {"size": fixed["size"]} if "size" in fixed else {}
        return cls(
            **extra,
            bands=bands,
            model_bands=model_bands,
            weights=weights,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            out_indices=out_indices,
            depth=depth,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}; arguments: see :class:`{cls.__name__}`."
    return checked_arguments(build)


def _dofa_builder(name: str, size: str, weights: str | None):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        bands: Sequence[BandLike] | None = None,
        model_bands: Sequence[BandLike] | None = None,
        weights: str | Enum | None = weights,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        out_indices: Sequence[int] | None = None,
        depth: int | None = None,
        img_size: int | None = None,
    ) -> SpectralViT:
        return DOFAEncoder(
            size,
            bands=bands,
            model_bands=model_bands,
            weights=weights,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            out_indices=out_indices,
            depth=depth,
            img_size=img_size,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}; arguments: see :class:`DOFAEncoder`."
    return checked_arguments(build)


dofa_small_patch16_224 = _dofa_builder("dofa_small_patch16_224", "small", None)
dofa_base_patch16_224 = _dofa_builder("dofa_base_patch16_224", "base", "DOFABase16_Weights.DOFA_MAE")
dofa_large_patch16_224 = _dofa_builder("dofa_large_patch16_224", "large", "DOFALarge16_Weights.DOFA_MAE")
copernicusfm_base = _builder(
    CopernicusFMEncoder, "copernicusfm_base", weights="CopernicusFM_Base_Weights.CopernicusFM_ViT"
)
panopticon_vitb14 = _builder(PanopticonEncoder, "panopticon_vitb14", weights="Panopticon_Weights.VIT_BASE14")
