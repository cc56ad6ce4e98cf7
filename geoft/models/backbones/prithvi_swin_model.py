"""The Prithvi Swin encoder: timm's Swin blocks, arranged as the reference's segmentation Swin.

Each of the four stages merges patches (from the second stage on), runs its shifted-window
blocks and layer-norms its output, which is returned as one level of the pyramid
``[B, C_i, H / 2^(i+2), W / 2^(i+2)]``. Inputs of any size work: the patch embedding pads to a
multiple of 4 (replicate, bottom / right) and each block pads its feature map to whole windows
before the cyclic shift, as the reference (and the original Swin segmentation code) does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import PatchMerging, SwinTransformerBlock, window_partition, window_reverse
from torch import nn
from torch.utils.checkpoint import checkpoint

from geoft.errors import ConfigError
from geoft.models.backbones.bands import BandLike
from geoft.models.backbones.checkpoint import LoadReport

STEM_STRIDE = 4


class PadThenShiftBlock(SwinTransformerBlock):
    """timm's Swin block with the window padding done before the cyclic shift (timm shifts first);
    the two agree when the feature map is a whole number of windows, and this order is the one the
    reference and the original Swin segmentation backbone use for other sizes."""

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, channels = x.shape
        win_h, win_w = self.window_size
        x = F.pad(x, (0, 0, 0, (win_w - width % win_w) % win_w, 0, (win_h - height % win_h) % win_h))
        padded_h, padded_w = x.shape[1], x.shape[2]
        shifted = any(self.shift_size)
        mask = None
        if shifted:
            x = torch.roll(x, shifts=(-self.shift_size[0], -self.shift_size[1]), dims=(1, 2))
            mask = self.get_attn_mask(x)
        windows = window_partition(x, self.window_size).view(-1, self.window_area, channels)
        windows = self.attn(windows, mask=mask).view(-1, win_h, win_w, channels)
        x = window_reverse(windows, self.window_size, padded_h, padded_w)
        if shifted:
            x = torch.roll(x, shifts=self.shift_size, dims=(1, 2))
        return x[:, :height, :width, :].contiguous()


class SwinPatchEmbedding(nn.Module):
    """Non-overlapping 4x4 patches projected to ``embed_dim`` and layer-normed; returns NHWC."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_chans, embed_dim, kernel_size=STEM_STRIDE, stride=STEM_STRIDE)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = (STEM_STRIDE - x.shape[-2] % STEM_STRIDE) % STEM_STRIDE
        pad_w = (STEM_STRIDE - x.shape[-1] % STEM_STRIDE) % STEM_STRIDE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.norm(self.projection(x).permute(0, 2, 3, 1))


class SwinStage(nn.Module):
    """Patch merging (all stages but the first), shifted-window blocks, and the output norm."""

    def __init__(
        self,
        in_dim: int,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        drop_path: Sequence[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.downsample: nn.Module = PatchMerging(in_dim, dim) if downsample else nn.Identity()
        self.blocks = nn.Sequential(
            *(
                PadThenShiftBlock(
                    dim,
                    input_resolution=(window_size, window_size),
                    num_heads=num_heads,
                    window_size=window_size,
                    shift_size=0 if i % 2 == 0 else window_size // 2,
                    always_partition=True,
                    dynamic_mask=True,
                    mlp_ratio=mlp_ratio,
                    drop_path=drop_path[i],
                )
                for i in range(depth)
            )
        )
        self.norm = nn.LayerNorm(dim)


class PrithviSwin(nn.Module):
    """Swin encoder returning a pyramid ``[B, C_i, H_i, W_i]`` for the stages in ``out_indices``.

    Args:
        in_chans: input channels.
        embed_dim: channels of the first stage (doubled at each merge).
        depths, num_heads: blocks and heads per stage.
        window_size: attention window side.
        mlp_ratio: MLP hidden width / channels.
        drop_path_rate: stochastic depth of the last block (linear from 0).
        out_indices: stages returned (default all four).
        grad_checkpointing: recompute block activations in the backward pass.
    """

    output_format = "NCHW"

    def __init__(
        self,
        *,
        in_chans: int = 6,
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        out_indices: Sequence[int] | None = None,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads) or not depths:
            raise ConfigError(
                f"depths {list(depths)} and num_heads {list(num_heads)} must list one entry per stage"
            )
        if not isinstance(window_size, int) or window_size < 2:
            raise ConfigError(f"window_size must be an int >= 2, got {window_size!r}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ConfigError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        stages = len(depths)
        self.in_chans = in_chans
        self.window_size = window_size
        self.grad_checkpointing = grad_checkpointing
        dims = [embed_dim * 2**i for i in range(stages)]
        self.out_indices = _resolve(out_indices, stages)
        self.out_channels = [dims[i] for i in self.out_indices]
        self.reductions = [STEM_STRIDE * 2**i for i in self.out_indices]
        self.bands: list[BandLike] | None = None
        self.load_report: LoadReport | None = None

        self.patch_embed = SwinPatchEmbedding(in_chans, embed_dim)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        start = [sum(depths[:i]) for i in range(stages)]
        self.stages = nn.ModuleList(
            SwinStage(
                dims[max(i - 1, 0)],
                dims[i],
                depths[i],
                num_heads[i],
                window_size,
                mlp_ratio,
                rates[start[i] : start[i] + depths[i]],
                downsample=i > 0,
            )
            for i in range(stages)
        )

    def forward(
        self,
        x: torch.Tensor,
        temporal_coords: torch.Tensor | None = None,
        location_coords: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Pyramid levels for ``x`` ``[B, C, H, W]`` (or ``[B, C, 1, H, W]``); it has no time or location
        encoding, so coordinates are refused by name."""
        from geoft.models.backbones.timm import reject_extra_inputs

        reject_extra_inputs(
            "Prithvi Swin", {"temporal_coords": temporal_coords, "location_coords": location_coords}
        )
        if x.ndim == 5 and x.shape[2] == 1:
            x = x[:, :, 0]
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ConfigError(
                f"Prithvi Swin expects [B, {self.in_chans}, H, W] input (bands={self.bands}), got {list(x.shape)}",
                hint="Make bands (or in_chans) match the image channels given to the model.",
            )
        if any(isinstance(size, torch.SymInt) for size in x.shape[-2:]):
            # Per-stage window padding of a symbolic size makes torch.export's shape algebra explode.
            raise ConfigError(
                "Prithvi Swin cannot be exported with a dynamic height/width.",
                hint="export for a fixed size (dynamic_hw=False) and run other sizes through tiled inference",
            )
        h = self.patch_embed(x)
        wanted = set(self.out_indices)
        features: dict[int, torch.Tensor] = {}
        for i, stage in enumerate(self.stages[: max(wanted) + 1]):
            h = stage.downsample(h)
            for block in stage.blocks:
                h = checkpoint(block, h, use_reentrant=False) if self._checkpointing() else block(h)
            if i in wanted:
                features[i] = stage.norm(h).permute(0, 3, 1, 2).contiguous()
        return [features[i] for i in self.out_indices]

    def _checkpointing(self) -> bool:
        return self.grad_checkpointing and torch.is_grad_enabled()

    def freeze(self) -> PrithviSwin:
        for param in self.parameters():
            param.requires_grad_(False)
        return self


def _resolve(out_indices: Sequence[int] | None, stages: int) -> list[int]:
    if out_indices is None:
        return list(range(stages))
    if isinstance(out_indices, int) or not len(out_indices):
        raise ConfigError(f"out_indices must be a non-empty list of stage indices, got {out_indices!r}")
    resolved = []
    for i in out_indices:
        if not isinstance(i, int) or not -stages <= i < stages:
            raise ConfigError(f"out_indices entry {i!r} is not a stage of a {stages}-stage Swin")
        resolved.append(i % stages)
    return resolved
