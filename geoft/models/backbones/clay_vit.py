"""The Clay encoder: a ViT whose patch embedding is generated from band wavelengths.

Tokens get Clay's GSD-scaled sin-cos positions in all but the last 8 channels; those 8 carry the
acquisition time (week, hour: sin and cos) and location (lat, lon: sin and cos), zero when unknown.
A CLS token leads. The blocks are timm's pre-norm ViT blocks without attention biases (Clay's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from geoft.errors import ConfigError
from geoft.models.backbones.bands import BandLike
from geoft.models.backbones.checkpoint import LoadReport
from geoft.models.backbones.clay_embed import WavePatchEmbedding, gsd_position_table

METADATA_CHANNELS = 8


def _clay_block(dim: int, heads: int, mlp_ratio: float, drop_path: float) -> Block:
    block = Block(dim, heads, mlp_ratio, qkv_bias=False, norm_layer=nn.LayerNorm, drop_path=drop_path)
    # Clay's attention output projection has no bias, its MLP has (timm's proj_bias sets both).
    block.attn.proj = nn.Linear(dim, dim, bias=False)
    return block


class ClayViT(nn.Module):
    """Clay encoder returning token sequences ``[B, 1 + h*w, D]`` (CLS first) after chosen blocks.

    Args:
        waves: centre wavelength (micrometres) of each input channel.
        gsd: ground sample distance of the input in metres (scales the position code).
        embed_dim, depth, num_heads, mlp_ratio: transformer size.
        patch_size: square patch side in pixels.
        img_size: nominal input size; other multiples of the patch size work too.
        out_indices: blocks whose output is returned (default: every block; the last one layer-normed).
        drop_path: stochastic depth rate of the last block.
        grad_checkpointing: recompute block activations in the backward pass.
    """

    output_format = "tokens"
    num_frames = 1

    def __init__(
        self,
        *,
        waves: Sequence[float],
        gsd: float = 10.0,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        patch_size: int = 8,
        img_size: int = 256,
        out_indices: Sequence[int] | None = None,
        drop_path: float = 0.0,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads or (embed_dim - METADATA_CHANNELS) % 4:
            raise ConfigError(
                f"embed_dim={embed_dim} must be divisible by num_heads and leave (D - 8) % 4 == 0"
            )
        if not isinstance(gsd, int | float) or not gsd > 0:
            raise ConfigError(f"gsd must be a positive number of metres per pixel, got {gsd!r}")
        if img_size % patch_size:
            raise ConfigError(f"img_size {img_size} is not a multiple of the patch size {patch_size}")
        self.embed_dim = embed_dim
        self.depth = depth
        self.patch_size = patch_size
        self.img_size = img_size
        self.gsd = float(gsd)
        self.in_chans = len(waves)
        self.grad_checkpointing = grad_checkpointing
        self.out_indices = _resolve_out_indices(out_indices, depth)
        self.out_channels = [embed_dim] * len(self.out_indices)
        self.register_buffer("waves", torch.tensor(list(waves), dtype=torch.float32), persistent=False)
        self.bands: list[BandLike] | None = None
        self.mean: list[float | None] | None = None
        self.std: list[float | None] | None = None
        self.load_report: LoadReport | None = None

        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)
        self.patch_embedding = WavePatchEmbedding(patch_size, embed_dim)
        rates = torch.linspace(0, drop_path, depth).tolist() if depth > 1 else [drop_path]
        self.blocks = nn.ModuleList(_clay_block(embed_dim, num_heads, mlp_ratio, rate) for rate in rates)
        self.norm = nn.LayerNorm(embed_dim)
        for block in self.blocks:
            for module in block.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)

    def metadata_code(
        self,
        batch: int,
        device: torch.device,
        temporal_coords: torch.Tensor | None,
        location_coords: torch.Tensor | None,
    ) -> torch.Tensor:
        """``[B, 8]``: week and hour (sin, cos), then lat and lon (sin, cos); zeros where unknown.

        geoft's ``temporal_coords`` are (year, day of year) per frame: the week comes from the first
        frame's day of year, the hour is unknown (zeros).
        """
        time = torch.zeros(batch, 4, device=device)
        place = torch.zeros(batch, 4, device=device)
        if temporal_coords is not None:
            if temporal_coords.ndim != 3 or tuple(temporal_coords.shape[::2]) != (batch, 2):
                raise ConfigError(
                    f"temporal_coords must be [B, T, 2] (year, day of year), got {list(temporal_coords.shape)}"
                )
            week = temporal_coords[:, 0, 1].float() / 7.0 * (2 * math.pi / 52)
            time = torch.stack([week.sin(), week.cos(), torch.zeros_like(week), torch.zeros_like(week)], 1)
        if location_coords is not None:
            if tuple(location_coords.shape) != (batch, 2):
                raise ConfigError(
                    f"location_coords must be [B, 2] (lat, lon in degrees), got {list(location_coords.shape)}"
                )
            rad = torch.deg2rad(location_coords.float())
            place = torch.stack([rad[:, 0].sin(), rad[:, 0].cos(), rad[:, 1].sin(), rad[:, 1].cos()], 1)
        return torch.cat([time, place], dim=1)

    def forward(
        self,
        x: torch.Tensor,
        temporal_coords: torch.Tensor | None = None,
        location_coords: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Tokens after each block in ``out_indices``.

        Args:
            x: ``[B, C, H, W]`` (or ``[B, C, 1, H, W]``), H and W multiples of the patch size.
            temporal_coords: ``[B, T, 2]`` (year, day of year), optional.
            location_coords: ``[B, 2]`` (lat, lon in degrees), optional.
        """
        x = self._check_input(x)
        batch, _, height, width = x.shape
        p = self.patch_size
        tokens = self.patch_embedding(x, self.waves)
        with torch.autocast(device_type=x.device.type, enabled=False):
            positions = gsd_position_table(
                height // p, width // p, self.embed_dim - METADATA_CHANNELS, self.gsd, x.device
            )
            metadata = self.metadata_code(batch, x.device, temporal_coords, location_coords)
        code = torch.cat(
            [
                positions.unsqueeze(0).expand(batch, -1, -1),
                metadata.unsqueeze(1).expand(-1, positions.shape[0], -1),
            ],
            dim=-1,
        )
        tokens = tokens + code.to(tokens.dtype)
        h = torch.cat([self.cls_token.to(tokens.dtype).expand(batch, -1, -1), tokens], dim=1)

        wanted = set(self.out_indices)
        outputs: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks[: max(wanted) + 1]):
            if self.grad_checkpointing and torch.is_grad_enabled():
                h = checkpoint(block, h, use_reentrant=False)
            else:
                h = block(h)
            if i in wanted:
                outputs[i] = self.norm(h) if i == self.depth - 1 else h
        return [outputs[i] for i in self.out_indices]

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5:
            if x.shape[2] != 1:
                raise ConfigError(
                    f"Clay takes single images; got {x.shape[2]} frames (shape {list(x.shape)})"
                )
            x = x[:, :, 0]
        if x.ndim != 4:
            raise ConfigError(f"Clay expects [B, C, H, W] input, got shape {list(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise ConfigError(
                f"Input has {x.shape[1]} channels but the Clay backbone was built for {self.in_chans} "
                f"(bands={self.bands}).",
                hint="Make bands match the image channels given to the model.",
            )
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ConfigError(
                f"Input of {x.shape[-2]} x {x.shape[-1]} px is not a multiple of Clay's patch size {self.patch_size}.",
                hint="Pad or crop images (the model factories pad automatically).",
            )
        return x

    def freeze(self) -> ClayViT:
        for param in self.parameters():
            param.requires_grad_(False)
        return self


def _resolve_out_indices(out_indices: Sequence[int] | None, depth: int) -> list[int]:
    if out_indices is None:
        return list(range(depth))
    if isinstance(out_indices, int) or not len(out_indices):
        raise ConfigError(f"out_indices must be a non-empty list of block indices, got {out_indices!r}")
    resolved = []
    for i in out_indices:
        if not isinstance(i, int) or not -depth <= i < depth:
            raise ConfigError(f"out_indices entry {i!r} is not a block index of a {depth}-block encoder")
        resolved.append(i % depth)
    return resolved
