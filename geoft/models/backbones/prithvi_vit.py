"""The Prithvi-EO encoder: a ViT over 3D (time x height x width) patches of multispectral images.

Same parameters and state-dict key names as the published MAE encoders (``patch_embed.proj``,
``cls_token``, ``blocks.N.*``, ``norm``, ``temporal_embed_enc.scale``, ``location_embed_enc.scale``),
so published checkpoints load strictly. Position embeddings are fixed sin-cos tables, computed for
the grid of each input, so any image size that is a multiple of the patch size and any number of
frames works without interpolation.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from geoft.errors import ConfigError
from geoft.models.backbones.bands import BandLike
from geoft.models.backbones.checkpoint import LoadReport
from geoft.models.backbones.prithvi_embed import LocationEncoder, PatchEmbed3D, TemporalEncoder, sincos_3d
from geoft.models.tracing import is_exporting

COORDS = ("time", "location")


def _to_3tuple(patch_size: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(patch_size, int):
        return (1, patch_size, patch_size)
    values = tuple(int(p) for p in patch_size)
    if len(values) == 2:
        return (1, *values)  # type: ignore[return-value]
    if len(values) != 3:
        raise ConfigError(f"patch_size must be an int, (h, w) or (t, h, w); got {patch_size!r}")
    return values  # type: ignore[return-value]


def _to_2tuple(img_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(img_size, int):
        return (img_size, img_size)
    values = tuple(int(s) for s in img_size)
    if len(values) != 2:
        raise ConfigError(f"img_size must be an int or (height, width); got {img_size!r}")
    return values  # type: ignore[return-value]


def _like(table: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``table`` in a dtype that can be added to ``tokens``.

    Under autocast the float32 table is kept (the sum is float32, more precise than bfloat16);
    in a model cast to half precision it takes the tokens' dtype.
    """
    if torch.is_autocast_enabled(tokens.device.type):
        return table.to(torch.promote_types(table.dtype, tokens.dtype))
    return table.to(tokens.dtype)


class PrithviViT(nn.Module):
    """Prithvi-EO ViT encoder returning token sequences ``[B, 1 + T'*H'*W', D]`` (CLS first).

    Args:
        in_chans: input channels (bands).
        embed_dim: token width D (divisible by 16).
        depth: number of transformer blocks.
        num_heads: attention heads per block.
        mlp_ratio: MLP hidden width / D.
        patch_size: (t, h, w) tubelet; an int p means (1, p, p).
        img_size: nominal (H, W); inputs of other sizes (multiples of the patch) work too.
        num_frames: nominal number of frames T.
        coords_encoding: any of "time", "location" (the ``_tl`` models use both).
        coords_scale_learn: learn the weight of the time / location embeddings.
        drop_path: stochastic depth rate of the last block (linearly increasing from 0).
        out_indices: blocks whose output is returned (negative counts from the end); default all.
        grad_checkpointing: recompute block activations in the backward pass (less memory when training).
    """

    output_format = "tokens"

    def __init__(
        self,
        *,
        in_chans: int = 6,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        patch_size: int | Sequence[int] = (1, 16, 16),
        img_size: int | Sequence[int] = 224,
        num_frames: int = 1,
        coords_encoding: Sequence[str] = (),
        coords_scale_learn: bool = False,
        drop_path: float = 0.0,
        out_indices: Sequence[int] | None = None,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.patch_size = _to_3tuple(patch_size)
        self.img_size = _to_2tuple(img_size)
        self._check_config(in_chans, embed_dim, depth, num_heads, num_frames, coords_encoding, drop_path)
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.depth = depth
        self.num_frames = num_frames
        self.grad_checkpointing = grad_checkpointing
        self.out_indices = self._resolve_out_indices(out_indices, depth)
        self.out_channels = [embed_dim] * len(self.out_indices)
        self.bands: list[BandLike] | None = None
        self.mean: list[float | None] | None = None  # pretraining statistics per band, set by builders
        self.std: list[float | None] | None = None
        self.load_report: LoadReport | None = None

        self.patch_embed = PatchEmbed3D(in_chans, embed_dim, self.patch_size)
        self.temporal_encoding = "time" in coords_encoding
        self.location_encoding = "location" in coords_encoding
        if self.temporal_encoding:
            self.temporal_embed_enc = TemporalEncoder(embed_dim, coords_scale_learn)
        if self.location_encoding:
            self.location_embed_enc = LocationEncoder(embed_dim, coords_scale_learn)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        rates = torch.linspace(0, drop_path, depth).tolist() if depth > 1 else [drop_path]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm, drop_path=rate)
            for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim)
        # Fixed table for the nominal grid; not saved in checkpoints (it is recomputed anyway).
        self.register_buffer(
            "pos_embed", sincos_3d(embed_dim, self.nominal_grid).unsqueeze(0), persistent=False
        )
        self._pos_cache: dict[tuple[tuple[int, int, int], torch.device], torch.Tensor] = {}
        self._warned_coords = False
        self._init_weights()

    # -- construction helpers ---------------------------------------------------------------------
    def _check_config(
        self,
        in_chans: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        num_frames: int,
        coords_encoding: Sequence[str],
        drop_path: float,
    ) -> None:
        for name, value in (("in_chans", in_chans), ("depth", depth), ("num_heads", num_heads)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ConfigError(f"num_frames must be a positive int, got {num_frames!r}")
        if embed_dim % 16 or embed_dim % num_heads:
            raise ConfigError(
                f"embed_dim={embed_dim} must be divisible by 16 (3D sin-cos positions) and by num_heads={num_heads}"
            )
        if not 0.0 <= drop_path < 1.0:
            raise ConfigError(f"drop_path must be in [0, 1), got {drop_path}")
        unknown = [c for c in coords_encoding if c not in COORDS]
        if unknown:
            raise ConfigError(f"coords_encoding entries must be among {COORDS}, got {unknown}")
        if "time" in coords_encoding and self.patch_size[0] != 1:
            raise ConfigError(
                f"temporal encoding needs a tubelet of 1 frame, but patch_size is {self.patch_size}",
            )
        if num_frames % self.patch_size[0]:
            raise ConfigError(
                f"num_frames={num_frames} is not a multiple of the tubelet size {self.patch_size[0]}"
            )
        for size, p in zip(self.img_size, self.patch_size[1:]):
            if size % p:
                raise ConfigError(
                    f"img_size {self.img_size} is not a multiple of the patch size {self.patch_size[1:]}"
                )

    @staticmethod
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

    def _init_weights(self) -> None:
        weight = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def nominal_grid(self) -> tuple[int, int, int]:
        """Token grid (T', H', W') of an input of ``num_frames`` x ``img_size``."""
        t, h, w = self.patch_size
        return (self.num_frames // t, self.img_size[0] // h, self.img_size[1] // w)

    def grid_for(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid of an input of the given size (which must be a multiple of the patch size)."""
        t, h, w = self.patch_size
        if frames % t or height % h or width % w:
            raise ConfigError(
                f"Input of {frames} frame(s) x {height} x {width} px is not a multiple of the patch size "
                f"(t, h, w)={self.patch_size}.",
                hint="Pad or crop images to multiples of the patch size (the model factories pad automatically).",
            )
        return (frames // t, height // h, width // w)

    def position_embedding(self, grid: tuple[int, int, int], device: torch.device) -> torch.Tensor:
        """``[1, T'*H'*W', D]`` fixed sin-cos table for ``grid`` (cached per grid and device).

        While exporting or tracing the grid may be symbolic: the table is then computed in the graph
        (comparing or hashing the grid would fix the input size).
        """
        if is_exporting():
            return sincos_3d(self.embed_dim, grid, device=device).unsqueeze(0)
        if grid == self.nominal_grid and self.pos_embed.device == device:
            return self.pos_embed
        key = (grid, device)
        if key not in self._pos_cache:
            if len(self._pos_cache) > 16:
                self._pos_cache.clear()
            self._pos_cache[key] = sincos_3d(self.embed_dim, grid, device=device).unsqueeze(0)
        return self._pos_cache[key]

    # -- forward ----------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        temporal_coords: torch.Tensor | None = None,
        location_coords: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Tokens after each block in ``out_indices`` (the last block's output is layer-normed).

        Args:
            x: ``[B, C, H, W]`` (one frame) or ``[B, C, T, H, W]``.
            temporal_coords: ``[B, T, 2]`` (year, day of year), used by models with time encoding.
            location_coords: ``[B, 2]`` (lat, lon in degrees), used by models with location encoding.
        """
        x = self._check_input(x)
        batch, _, frames, height, width = x.shape
        grid = self.grid_for(frames, height, width)
        tokens = self.patch_embed(x)
        tokens = tokens + _like(self.position_embedding(grid, tokens.device), tokens)
        tokens = self._add_coords(tokens, grid, temporal_coords, location_coords)
        # The CLS token's position embedding is zero, so nothing is added to it.
        h = torch.cat([_like(self.cls_token, tokens).expand(batch, -1, -1), tokens], dim=1)

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
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.ndim != 5:
            raise ConfigError(
                f"Prithvi expects [B, C, H, W] or [B, C, T, H, W] input, got shape {list(x.shape)}"
            )
        if x.shape[1] != self.in_chans:
            raise ConfigError(
                f"Input has {x.shape[1]} channels but the backbone was built for {self.in_chans} "
                f"(bands={self.bands}).",
                hint="Make bands (or in_chans) match the image channels given to the model.",
            )
        return x

    def _add_coords(
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int, int],
        temporal_coords: torch.Tensor | None,
        location_coords: torch.Tensor | None,
    ) -> torch.Tensor:
        batch = tokens.shape[0]
        ignored = []
        if temporal_coords is not None:
            if not self.temporal_encoding:
                ignored.append("temporal_coords")
            else:
                if tuple(temporal_coords.shape) != (batch, grid[0], 2):
                    raise ConfigError(
                        f"temporal_coords must be [B, T, 2] = [{batch}, {grid[0]}, 2] (year, day of year), "
                        f"got {list(temporal_coords.shape)}"
                    )
                per_frame = grid[1] * grid[2]
                embedding = self.temporal_embed_enc(temporal_coords)
                tokens = tokens + _like(embedding.repeat_interleave(per_frame, dim=1), tokens)
        if location_coords is not None:
            if not self.location_encoding:
                ignored.append("location_coords")
            else:
                if tuple(location_coords.shape) != (batch, 2):
                    raise ConfigError(
                        f"location_coords must be [B, 2] = [{batch}, 2] (lat, lon), got {list(location_coords.shape)}"
                    )
                tokens = tokens + _like(self.location_embed_enc(location_coords), tokens)
        if ignored and not self._warned_coords:
            self._warned_coords = True
            warnings.warn(
                f"{', '.join(ignored)} given to a Prithvi encoder built without that encoding; they are not used. "
                "Use a _tl variant (e.g. prithvi_eo_v2_300_tl) to use acquisition dates and locations.",
                stacklevel=3,
            )
        return tokens

    # -- training helpers -------------------------------------------------------------------------
    def freeze(self) -> PrithviViT:
        """Stop gradients through every parameter of the encoder."""
        for param in self.parameters():
            param.requires_grad_(False)
        return self
