"""CROMA (optical, SAR or joint) and Scale-MAE from torchgeo, as token backbones.

CROMA's encoders use 2-D ALiBi attention biases fixed by the image size they are built for
(``image_size``, 120 px as pre-trained); their patch tokens have no class token, so geoft puts the
mean token first (the automatic necks drop the first token). The joint model takes the optical and
SAR bands stacked in one tensor, in the order of ``bands``. Scale-MAE computes its position
embedding from the ground sample distance (``res``, metres per pixel) for a fixed ``img_size``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torchgeo.models
from torch import nn

from geoft.errors import CheckpointError, ConfigError
from geoft.models.backbones.arguments import checked_arguments
from geoft.models.backbones.bands import BandLike, band_label, normalize_bands
from geoft.models.backbones.checkpoint import LoadReport, read_state_dict
from geoft.models.backbones.timm import as_image_batch, reject_extra_inputs
from geoft.models.backbones.torchgeo_vit import TorchGeoViT
from geoft.models.backbones.torchgeo_weights import (
    fetch_enum_file,
    load_published,
    resolve_member,
    select_band_channels,
)

#: CROMA's inputs: Sentinel-2 L1C without the cirrus band B10, and Sentinel-1 VV, VH.
CROMA_OPTICAL_BANDS = normalize_bands(
    ["COASTAL_AEROSOL", "BLUE", "GREEN", "RED", "RED_EDGE_1", "RED_EDGE_2", "RED_EDGE_3"]
    + ["NIR_BROAD", "NIR_NARROW", "WATER_VAPOR", "SWIR_1", "SWIR_2"]
)
CROMA_SAR_BANDS = normalize_bands(["VV", "VH"])
_CROMA_DROP = {
    "s1_GAP_FFN.": "pooled-embedding head (the backbone returns tokens)",
    "s2_GAP_FFN.": "pooled-embedding head (the backbone returns tokens)",
    "s1_encoder.": "SAR encoder (not used by this modality)",
    "s2_encoder.": "optical encoder (not used by this modality)",
    "joint_encoder.": "joint encoder (not used by this modality)",
}
_CROMA_SIZES = {"base": (768, 12), "large": (1024, 24)}
_MODALITIES = {"optical": ("optical",), "sar": ("sar",), "joint": ("sar", "optical")}


def _read_nested(path: str | Path) -> dict[str, torch.Tensor]:
    """CROMA's files hold one state dict per part (``{"s2_encoder": {...}, ...}``); flatten them."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe pickles
        raise CheckpointError(
            f"Cannot read weights from {str(path)!r}: {err.__class__.__name__}: {err}"
        ) from err
    if isinstance(obj, Mapping) and any(isinstance(v, Mapping) for v in obj.values()):
        return {
            f"{part}.{k}": v for part, sd in obj.items() if isinstance(sd, Mapping) for k, v in sd.items()
        }
    return read_state_dict(path)


class CROMAEncoder(nn.Module):
    """CROMA's optical, SAR or joint encoder returning ``[B, 1 + N, D]`` tokens (mean token first).

    Args:
        size: ``"base"`` or ``"large"``.
        modality: ``"optical"`` (12 Sentinel-2 bands), ``"sar"`` (VV, VH) or ``"joint"`` (both).
        bands: input bands by name (default the published ones of the modality); missing published
            bands are not allowed for the joint model's split, extra bands start new.
        image_size: input height and width (a multiple of 8; CROMA was pre-trained at 120).
        out_indices: layers of the (last) encoder whose output is returned (default all).
        depth: optical encoder depth (SAR and joint: half of it), default the published 12 / 24; the
            published files only load at the full depth.
    """

    output_format = "tokens"
    patch_size = 8

    def __init__(
        self,
        size: str,
        modality: str,
        *,
        weights: str | Enum | None = None,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        image_size: int = 120,
        out_indices: Sequence[int] | None = None,
        depth: int | None = None,
    ) -> None:
        super().__init__()
        if modality not in _MODALITIES:
            raise ConfigError(f"CROMA modality must be one of {', '.join(_MODALITIES)}, got {modality!r}")
        self.name = f"croma_{size}_{modality}"
        enum_cls = getattr(torchgeo.models, f"CROMA{size.capitalize()}_Weights")
        self.weights = resolve_member(weights, (enum_cls,), self.name) if weights is not None else None
        self.modality = modality
        published = {"optical": CROMA_OPTICAL_BANDS, "sar": CROMA_SAR_BANDS}
        default = [b for m in _MODALITIES[modality][::-1] for b in published[m]]
        self.bands: list[BandLike] = normalize_bands(list(bands)) if bands is not None else default
        self.image_size = int(image_size)
        dim, full_depth = _CROMA_SIZES[size]
        # torchgeo's CROMA class with the sizes of its croma_<size>; depth < full only for small tests
        croma = torchgeo.models.CROMA(
            modalities=list(_MODALITIES[modality]),
            encoder_dim=dim,
            encoder_depth=depth or full_depth,
            num_heads=16,
            patch_size=8,
            image_size=image_size,
        )
        self.register_buffer("attn_bias", croma.attn_bias, persistent=False)
        # which input channels feed which encoder: SAR bands go to the SAR encoder in the joint model
        sar = [b in CROMA_SAR_BANDS for b in self.bands]
        self.split: dict[str, list[int]] = {}
        self.split_bands: dict[str, list[BandLike]] = {}
        for part in _MODALITIES[modality]:
            idx = (
                [i for i, s in enumerate(sar) if s == (part == "sar")]
                if modality == "joint"
                else list(range(len(self.bands)))
            )
            self.split[part] = idx
            self.split_bands[part] = [self.bands[i] for i in idx]
            if not idx:
                raise ConfigError(
                    f"{self.name}: no {part} band among bands={[band_label(b) for b in self.bands]}"
                )
            encoder = getattr(croma, "s1_encoder" if part == "sar" else "s2_encoder")
            if len(idx) != encoder.in_channels:
                encoder.in_channels = len(idx)
                encoder.linear_input = nn.Linear(len(idx) * 64, encoder.dim)
            setattr(self, "s1_encoder" if part == "sar" else "s2_encoder", encoder)
        if modality == "joint":
            self.joint_encoder = croma.joint_encoder
        last = (
            self.joint_encoder
            if modality == "joint"
            else getattr(self, "s1_encoder" if modality == "sar" else "s2_encoder").transformer
        )
        n = len(last.layers)
        self.out_indices = [i % n for i in out_indices] if out_indices is not None else list(range(n))
        self.out_channels: list[int] = [croma.encoder_dim] * len(self.out_indices)
        self.load_report: LoadReport | None = None
        if ckpt_path is not None or pretrained:
            if ckpt_path is None and self.weights is None:
                raise ConfigError(f"{self.name}: pretrained=True needs weights=... or ckpt_path=...")
            path = ckpt_path if ckpt_path is not None else fetch_enum_file(self.weights)  # type: ignore[arg-type]
            self.load_report = self._load(_read_nested(path), str(path) if ckpt_path else f"{self.weights}")

    def _load(self, state: dict[str, torch.Tensor], source: str) -> LoadReport:
        report = LoadReport(source=source)
        own = self.state_dict()
        for part, published in (("s2_encoder", CROMA_OPTICAL_BANDS), ("s1_encoder", CROMA_SAR_BANDS)):
            key = f"{part}.linear_input.weight"
            if key in own and key in state:
                requested = self.split_bands["sar" if part == "s1_encoder" else "optical"]
                dim = state[key].shape[0]
                picked = select_band_channels(
                    state[key].reshape(dim, -1, 64),
                    published,
                    requested,
                    own[key].reshape(dim, -1, 64),
                    key,
                    report,
                )
                state[key] = picked.reshape(dim, -1)
        return load_published(self, state, report, self.name, _CROMA_DROP)

    def _encode(
        self, encoder: nn.Module, x: torch.Tensor, keep: set[int] | None
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        p = self.patch_size
        b, c, h, w = x.shape
        patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)
        tokens, outs = encoder.linear_input(patches), {}
        for i, (attn, ffn) in enumerate(encoder.transformer.layers):
            tokens = attn(tokens, self.attn_bias) + tokens
            tokens = ffn(tokens) + tokens
            if keep is not None and i in keep:
                outs[i] = (
                    encoder.transformer.norm_out(tokens)
                    if i == len(encoder.transformer.layers) - 1
                    else tokens
                )
        return encoder.transformer.norm_out(tokens), outs

    def forward(self, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
        """Tokens ``[B, 1 + N, D]`` (mean token first) for ``x`` ``[B, len(bands), image_size, image_size]``."""
        reject_extra_inputs(self.name, kwargs)
        x = as_image_batch(x, self.name)
        if tuple(x.shape[1:]) != (len(self.bands), self.image_size, self.image_size):
            raise ConfigError(
                f"{self.name} was built for [{len(self.bands)}, {self.image_size}, {self.image_size}] inputs, "
                f"got {list(x.shape[1:])}",
                hint="set image_size to the chip size (a multiple of 8) and list every input band in bands",
            )
        keep = set(self.out_indices)
        if self.modality == "joint":
            sar, _ = self._encode(self.s1_encoder, x[:, self.split["sar"]], None)
            optical, _ = self._encode(self.s2_encoder, x[:, self.split["optical"]], None)
            tokens, outs = sar, {}
            layers = self.joint_encoder.layers
            for i, (attn, cross, ffn) in enumerate(layers):
                tokens = attn(tokens, self.attn_bias) + tokens
                tokens = cross(tokens, optical, self.attn_bias) + tokens
                tokens = ffn(tokens) + tokens
                if i in keep:
                    outs[i] = self.joint_encoder.norm_out(tokens) if i == len(layers) - 1 else tokens
        else:
            encoder = self.s1_encoder if self.modality == "sar" else self.s2_encoder
            _, outs = self._encode(encoder, x, keep)
        return [torch.cat([outs[i].mean(dim=1, keepdim=True), outs[i]], dim=1) for i in self.out_indices]

    def freeze(self) -> CROMAEncoder:
        for param in self.parameters():
            param.requires_grad_(False)
        return self


class ScaleMAEEncoder(TorchGeoViT):
    """Scale-MAE ViT-L/16 (torchgeo's ``scalemae_large_patch16``) for ``img_size`` inputs at ``res`` m/px."""

    def __init__(self, *, img_size: int = 224, res: float = 1.0, **kwargs: Any) -> None:
        self._img_size, self._res, self._depth = int(img_size), float(res), kwargs.get("depth")
        super().__init__("scalemae_large_patch16", **kwargs)

    @staticmethod
    def _weight_enums(arch: str) -> tuple[type[Enum], ...]:
        return (torchgeo.models.ScaleMAELarge16_Weights,)

    def _create(self, arch: str, in_chans: int, img_size: int, drop_path_rate: float) -> nn.Module:
        # torchgeo's ScaleMAE class with the sizes of its scalemae_large_patch16, built at the
        # requested depth directly (building all 24 blocks to drop most is slow).
        return torchgeo.models.ScaleMAE(
            res=self._res,
            img_size=self._img_size,
            in_chans=in_chans,
            patch_size=16,
            embed_dim=1024,
            depth=self._depth or 24,
            num_heads=16,
            mlp_ratio=4,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_classes=0,
            drop_path_rate=drop_path_rate,
        )

    def _load(self, state: dict[str, torch.Tensor], source: str) -> LoadReport:
        own = self.model.state_dict()["pos_embed"]
        published = state.get("pos_embed")
        if published is not None and published.shape != own.shape:
            # Scale-MAE computes its position embedding from the GSD; the stored one is unused. It is
            # resized (as torchgeo does) only so that the file loads strictly.
            state = torchgeo.models.scale_mae.interpolate_pos_embed(self.model, dict(state))
        report = super()._load(state, source)
        if published is not None and published.shape != own.shape:
            report.adapted["pos_embed"] = (
                f"{list(published.shape)} interpolated to {list(own.shape)} (unused by Scale-MAE)"
            )
        return report

    def forward(self, x: torch.Tensor, **kwargs: Any) -> list[torch.Tensor]:
        if tuple(x.shape[-2:]) != (self._img_size, self._img_size):
            raise ConfigError(
                f"scalemae_large_patch16 was built for {self._img_size}x{self._img_size} inputs, got "
                f"{list(x.shape[-2:])}",
                hint="set img_size to the chip size (a multiple of 16)",
            )
        return super().forward(x, **kwargs)


def _croma_builder(size: str, modality: str):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        weights: str | Enum | None = f"CROMA{size.capitalize()}_Weights.CROMA_VIT",
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        image_size: int = 120,
        out_indices: Sequence[int] | None = None,
        depth: int | None = None,
    ) -> CROMAEncoder:
        return CROMAEncoder(
            size,
            modality,
            weights=weights,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            bands=bands,
            image_size=image_size,
            out_indices=out_indices,
            depth=depth,
        )

    build.__name__ = build.__qualname__ = f"croma_{size}_{modality}"
    build.__doc__ = f"CROMA {size} {modality} encoder; arguments: see :class:`CROMAEncoder`."
    return checked_arguments(build)


for _size in ("base", "large"):
    for _modality in _MODALITIES:
        globals()[f"croma_{_size}_{_modality}"] = _croma_builder(_size, _modality)


@checked_arguments
def scalemae_large_patch16(
    *,
    weights: str | Enum | None = "ScaleMAELarge16_Weights.FMOW_RGB",
    pretrained: bool = False,
    ckpt_path: str | Path | None = None,
    bands: Sequence[BandLike] | None = None,
    model_bands: Sequence[BandLike] | None = None,
    img_size: int = 224,
    res: float = 1.0,
    out_indices: Sequence[int] | None = None,
    drop_path_rate: float = 0.0,
    depth: int | None = None,
) -> ScaleMAEEncoder:
    """Scale-MAE ViT-L/16 (fMoW RGB weights); arguments: see :class:`ScaleMAEEncoder` and :class:`TorchGeoViT`."""
    return ScaleMAEEncoder(
        img_size=img_size,
        res=res,
        weights=weights,
        pretrained=pretrained,
        ckpt_path=ckpt_path,
        bands=bands,
        model_bands=model_bands,
        out_indices=out_indices,
        drop_path_rate=drop_path_rate,
        depth=depth,
    )
