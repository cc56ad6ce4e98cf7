"""A masked autoencoder around a Prithvi encoder, for continued pre-training on unlabeled imagery.

A random ``mask_ratio`` of the patch tokens is hidden; the encoder sees only the visible ones, and a
light transformer decoder predicts the pixels of the hidden patches (loss on those only). The state
dict has the published Prithvi-EO layout, ``encoder.*`` beside ``decoder.*``, so the checkpoint loads
into any geoft Prithvi backbone through ``ckpt_path`` (``backbone_ckpt_path`` in a model factory),
strictly, with the decoder dropped and reported in the :class:`~geoft.models.backbones.checkpoint.LoadReport`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from geoft.errors import ConfigError
from geoft.models.backbones.prithvi_embed import sincos_3d
from geoft.models.backbones.prithvi_vit import PrithviViT


@dataclass
class ReconstructionOutput:
    """``prediction`` and ``target``: ``[B, L, t*h*w*C]`` patch pixels; ``mask``: ``[B, L]``, 1 = hidden."""

    prediction: Tensor
    target: Tensor
    mask: Tensor


def patchify(x: Tensor, patch_size: tuple[int, int, int]) -> Tensor:
    """``[B, C, T, H, W]`` -> ``[B, T'*H'*W', t*h*w*C]``, patches in the encoder's token order (w fastest)."""
    t, h, w = patch_size
    b, c, frames, height, width = x.shape
    x = x.reshape(b, c, frames // t, t, height // h, h, width // w, w)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, -1, t * h * w * c)


def unpatchify(
    patches: Tensor, patch_size: tuple[int, int, int], shape: torch.Size | tuple[int, ...]
) -> Tensor:
    """The inverse of :func:`patchify`: ``[B, L, t*h*w*C]`` -> ``shape`` ``[B, C, T, H, W]``."""
    t, h, w = patch_size
    b, c, frames, height, width = shape
    x = patches.reshape(b, frames // t, height // h, width // w, t, h, w, c)
    return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, c, frames, height, width)


class MAEDecoder(nn.Module):
    """Project encoder tokens, fill hidden positions with a learned mask token, and predict patch pixels.

    Parameter names are the published Prithvi-EO MAE decoder's, so its weights load as they are.
    """

    def __init__(self, encoder_dim: int, dim: int, depth: int, num_heads: int, patch_pixels: int) -> None:
        super().__init__()
        if dim % 16 or dim % num_heads:
            raise ConfigError(
                f"decoder_embed_dim must be a multiple of 16 and of decoder_num_heads, got {dim} and {num_heads}"
            )
        self.dim = dim
        self.decoder_embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_blocks = nn.ModuleList(Block(dim, num_heads, 4.0, qkv_bias=True) for _ in range(depth))
        self.decoder_norm = nn.LayerNorm(dim)
        self.decoder_pred = nn.Linear(dim, patch_pixels)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, tokens: Tensor, restore: Tensor, grid: tuple[int, int, int]) -> Tensor:
        """``tokens``: ``[B, 1 + visible, D]`` (CLS first); ``restore``: ``[B, L]`` unshuffle indices."""
        x = self.decoder_embed(tokens)
        cls, visible = x[:, :1], x[:, 1:]
        batch, length = restore.shape
        hidden = self.mask_token.to(x.dtype).expand(batch, length - visible.shape[1], -1)
        full = torch.cat([visible, hidden], dim=1)
        full = torch.gather(full, 1, restore.unsqueeze(-1).expand(-1, -1, self.dim))
        full = full + sincos_3d(self.dim, grid, device=x.device).to(x.dtype).unsqueeze(0)
        x = torch.cat([cls, full], dim=1)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]


class MaskedAutoencoder(nn.Module):
    """Prithvi encoder + :class:`MAEDecoder`.

    Args:
        encoder: a :class:`PrithviViT` (from the backbone registry, e.g. ``prithvi_eo_v2_300``).
        mask_ratio: share of patch tokens hidden from the encoder, in (0, 1).
        decoder_embed_dim, decoder_depth, decoder_num_heads: the decoder's width, blocks and heads.
    """

    def __init__(
        self,
        encoder: nn.Module,
        mask_ratio: float = 0.75,
        decoder_embed_dim: int = 128,
        decoder_depth: int = 2,
        decoder_num_heads: int = 4,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, PrithviViT):
            raise ConfigError(
                f"masked-autoencoder reconstruction needs a Prithvi encoder, got {type(encoder).__name__}",
                hint="use a prithvi_eo_* backbone",
            )
        if not 0.0 < mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must be between 0 and 1 (exclusive), got {mask_ratio}")
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        t, h, w = encoder.patch_size
        self.decoder = MAEDecoder(
            encoder.embed_dim,
            decoder_embed_dim,
            decoder_depth,
            decoder_num_heads,
            t * h * w * encoder.in_chans,
        )

    def freeze_encoder(self) -> None:
        self.encoder.freeze()

    def freeze_decoder(self) -> None:
        for param in self.decoder.parameters():
            param.requires_grad_(False)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> ReconstructionOutput:
        """Hide a random ``mask_ratio`` of the patches of ``x`` (``[B, C, H, W]`` or ``[B, C, T, H, W]``)
        and predict them."""
        enc = self.encoder
        x5 = x.unsqueeze(2) if x.ndim == 4 else x
        if x5.ndim != 5 or x5.shape[1] != enc.in_chans:
            raise ConfigError(
                f"reconstruction input must be [B, {enc.in_chans}, (T,) H, W], got {list(x.shape)}",
                hint="make the datamodule's bands match the backbone's bands",
            )
        batch, _, frames, height, width = x5.shape
        grid = enc.grid_for(frames, height, width)
        tokens = enc.patch_embed(x5)
        tokens = tokens + enc.position_embedding(grid, tokens.device).to(tokens.dtype)
        length = tokens.shape[1]
        keep = max(1, int(round(length * (1.0 - self.mask_ratio))))
        noise = torch.rand(batch, length, device=tokens.device, generator=generator)
        shuffle = torch.argsort(noise, dim=1)
        restore = torch.argsort(shuffle, dim=1)
        visible = torch.gather(tokens, 1, shuffle[:, :keep].unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        h = torch.cat([enc.cls_token.to(visible.dtype).expand(batch, -1, -1), visible], dim=1)
        for block in enc.blocks:
            h = block(h)
        h = enc.norm(h)
        prediction = self.decoder(h, restore, grid)
        mask = torch.ones(batch, length, device=tokens.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)
        return ReconstructionOutput(prediction, patchify(x5, enc.patch_size), mask)


def valid_pixels(target: Tensor, ignore_value: float | None = None) -> Tensor:
    """Target pixels that count: finite, and not ``ignore_value``."""
    valid = torch.isfinite(target)
    if ignore_value is not None:
        valid &= target != ignore_value
    return valid


def patch_errors(
    out: ReconstructionOutput, ignore_value: float | None = None, hidden_only: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-pixel squared and absolute errors (``[B, L, P]``, float32) and their weights (1 = counts):
    valid pixels of the hidden patches, or of every patch when ``hidden_only`` is False."""
    valid = valid_pixels(out.target, ignore_value)
    target = torch.where(valid, out.target, out.prediction.detach())
    diff = out.prediction.float() - target.float()
    weight = valid.float()
    if hidden_only:
        weight = weight * out.mask.unsqueeze(-1)
    return diff**2, diff.abs(), weight


def masked_patch_loss(
    out: ReconstructionOutput, kind: str = "mse", ignore_value: float | None = None
) -> Tensor:
    """Mean per-pixel ``mse`` or ``mae`` over the hidden patches; non-finite target pixels, and pixels
    equal to ``ignore_value``, count for nothing."""
    squared, absolute, weight = patch_errors(out, ignore_value)
    per_pixel = absolute if kind == "mae" else squared
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)


__all__ = [
    "MAEDecoder",
    "MaskedAutoencoder",
    "ReconstructionOutput",
    "masked_patch_loss",
    "patch_errors",
    "patchify",
    "unpatchify",
    "valid_pixels",
]
