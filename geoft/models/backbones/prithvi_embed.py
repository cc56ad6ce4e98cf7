"""Embeddings of the Prithvi-EO encoder: 3D sin-cos positions, and time / location encoders.

All sin-cos tables are computed in float32 with autocast off: year values (~2020) times
frequencies lose their meaning in bfloat16.
"""

from __future__ import annotations

import torch
from torch import nn


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """``[M, dim]`` table: ``sin(p * w_k)`` then ``cos(p * w_k)``, ``w_k = 10000^(-2k/dim)``."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = positions.reshape(-1, 1).to(torch.float64) * omega.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1).to(torch.float32)


def sincos_3d(dim: int, grid: tuple[int, int, int], device: torch.device | None = None) -> torch.Tensor:
    """``[t*h*w, dim]`` position table for a token grid ordered (t, h, w), w fastest.

    Channels split 6/16 width, 6/16 height, 4/16 time (the layout Prithvi was pretrained with).
    """
    if dim % 16:
        raise ValueError(f"3D sin-cos embedding needs embed_dim divisible by 16, got {dim}")
    t, h, w = grid
    w_dim, h_dim, t_dim = dim // 16 * 6, dim // 16 * 6, dim // 16 * 4
    tt, hh, ww = torch.meshgrid(
        torch.arange(t, device=device),
        torch.arange(h, device=device),
        torch.arange(w, device=device),
        indexing="ij",
    )
    return torch.cat([sincos_1d(w_dim, ww), sincos_1d(h_dim, hh), sincos_1d(t_dim, tt)], dim=1)


class PatchEmbed3D(nn.Module):
    """Cut ``[B, C, T, H, W]`` into (t, h, w) tubelets and project each to ``embed_dim``.

    The weights are a Conv3d's (the published layout), but the projection runs as one matrix product
    over the cut tubelets, which is the same sum. Reason: oneDNN's bfloat16 Conv3d with a one-frame
    kernel returns wrong values on CPUs with AMX (torch 2.14: errors as large as the outputs), so
    bf16-mixed training on such a CPU would learn from noise; matrix products are right everywhere.
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: tuple[int, int, int]) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        pt, ph, pw = self.patch_size
        nt, nh, nw = (
            t // pt,
            h // ph,
            w // pw,
        )  # like the Conv3d, a remainder past the last tubelet is left out
        x = x[:, :, : nt * pt, : nh * ph, : nw * pw]
        tubelets = (
            x.reshape(b, c, nt, pt, nh, ph, nw, pw)
            .permute(0, 2, 4, 6, 1, 3, 5, 7)  # tokens ordered (t, h, w), each tubelet as (c, t, h, w)
            .reshape(b, nt * nh * nw, c * pt * ph * pw)
        )
        return nn.functional.linear(tubelets, self.proj.weight.flatten(1), self.proj.bias)  # B, L, D


class _ScaledEncoder(nn.Module):
    """Shared part of the time and location encoders: a scale, learned or fixed at 1."""

    def __init__(self, embed_dim: int, trainable_scale: bool) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        if trainable_scale:
            self.scale = nn.Parameter(torch.full((1,), 0.1))
        else:
            self.register_buffer("scale", torch.ones(1))

    def _pair(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        half = self.embed_dim // 2
        with torch.autocast(device_type=first.device.type, enabled=False):
            table = torch.cat([sincos_1d(half, first), sincos_1d(self.embed_dim - half, second)], dim=-1)
            return self.scale.float() * table


class TemporalEncoder(_ScaledEncoder):
    """Encode acquisition dates ``[B, T, 2]`` (year, day of year) as ``[B, T, embed_dim]``."""

    def forward(self, temporal_coords: torch.Tensor) -> torch.Tensor:
        b, t, _ = temporal_coords.shape
        return self._pair(temporal_coords[..., 0], temporal_coords[..., 1]).reshape(b, t, self.embed_dim)


class LocationEncoder(_ScaledEncoder):
    """Encode scene centres ``[B, 2]`` (latitude, longitude in degrees) as ``[B, 1, embed_dim]``."""

    def forward(self, location_coords: torch.Tensor) -> torch.Tensor:
        b = location_coords.shape[0]
        return self._pair(location_coords[:, 0], location_coords[:, 1]).reshape(b, 1, self.embed_dim)
