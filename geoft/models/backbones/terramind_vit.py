"""The TerraMind encoder on raw modalities: one patch embedding per modality, a shared ViT.

Parameter names follow the published checkpoints (``encoder_embeddings.<modality>.proj`` /
``.mod_emb``, ``encoder.N.*``, ``encoder_norm``), except where timm's blocks name things their way
(the gated MLP's ``fc1``/``fc3`` are timm's ``fc1_g``/``fc1_x``); the loader maps the names. The
LayerNorms have no bias (the published files store zeros), and the position tables are fixed
sin-cos tables, recomputed rather than stored.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from timm.layers import Mlp, SwiGLU
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from geoft.errors import ConfigError
from geoft.models.backbones.checkpoint import LoadReport
from geoft.models.backbones.terramind_modalities import Modality, find_modality
from geoft.models.tracing import is_exporting

MERGE_METHODS = ("mean", "max", "concat", "dict", None)


def sincos_2d(grid: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """``[1, grid*grid, dim]`` table of TerraMind's pre-training (MoCo-v3 layout: sin/cos of the row
    position, then of the column position, ``dim / 4`` frequencies each)."""
    if dim % 4:
        raise ConfigError(f"embed_dim must be divisible by 4 for 2D sin-cos positions, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out_r = rows.reshape(-1, 1).float() * omega
    out_c = cols.reshape(-1, 1).float() * omega
    return torch.cat([out_r.sin(), out_r.cos(), out_c.sin(), out_c.cos()], dim=1).unsqueeze(0)


def _gated_mlp(in_features: int, hidden_features: int, **kwargs: object) -> SwiGLU:
    """SwiGLU whose hidden width is 2/3 of the nominal one (same FLOPs as a plain MLP)."""
    return SwiGLU(in_features, int(2 * hidden_features / 3), **kwargs)  # type: ignore[arg-type]


class ModalityEmbedding(nn.Module):
    """Patches of one modality ``[B, C, H, W]`` -> tokens ``[B, h*w, D]`` plus a learned modality embedding.

    ``proj`` is a bias-free linear map of each flattened patch (pixel-major, channel fastest), as in
    the published weights; it runs as a strided convolution.
    """

    def __init__(self, channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.channels = channels
        self.patch_size = patch_size
        self.proj = nn.Linear(channels * patch_size * patch_size, dim, bias=False)
        self.mod_emb = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        kernel = self.proj.weight.view(-1, p, p, self.channels).permute(0, 3, 1, 2)
        return F.conv2d(x, kernel, stride=p).flatten(2).transpose(1, 2)


class TerraMindViT(nn.Module):
    """TerraMind encoder over a configured set of raw modalities, returning tokens ``[B, h*w, D']``.

    Args:
        modalities: the configured modalities (see :func:`resolve_modalities`), in order.
        embed_dim / depth / num_heads: width, blocks and heads of the transformer.
        gated_mlp: SwiGLU feed-forward with SiLU (base, large) instead of a GELU MLP (tiny, small).
        bias: biases in the attention and MLP layers (tiny, small).
        img_size: nominal image size; other sizes (multiples of 16) interpolate the position table.
        merge_method: how the tokens of several modalities become one sequence: ``mean`` / ``max``
            over modalities, ``concat`` along channels (missing modalities get a learned token), ``dict``
            ({modality: tokens}) or None (all tokens in one sequence).
        out_indices: blocks whose output is returned (default: all; the last one is layer-normed).
        drop_path_rate: stochastic depth of the last block (linear from 0).
        modality_drop_rate: while training, the chance to drop each input modality but one.
        grad_checkpointing: recompute block activations in the backward pass.
    """

    output_format = "tokens"
    has_cls_token = False

    def __init__(
        self,
        modalities: Sequence[Modality],
        *,
        embed_dim: int,
        depth: int,
        num_heads: int,
        gated_mlp: bool,
        bias: bool,
        patch_size: int = 16,
        img_size: int = 224,
        merge_method: str | None = "mean",
        out_indices: Sequence[int] | None = None,
        drop_path_rate: float = 0.0,
        modality_drop_rate: float = 0.0,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if merge_method not in MERGE_METHODS:
            raise ConfigError(f"merge_method must be one of {MERGE_METHODS}, got {merge_method!r}")
        if not isinstance(img_size, int) or img_size % patch_size:
            raise ConfigError(
                f"img_size must be an int multiple of the patch size {patch_size}, got {img_size!r}"
            )
        if not 0.0 <= modality_drop_rate <= 1.0:
            raise ConfigError(f"modality_drop_rate must be in [0, 1], got {modality_drop_rate}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ConfigError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        if not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"depth must be a positive int, got {depth!r}")
        self.modalities = list(modalities)
        self.embed_dim = embed_dim
        self.depth = depth
        self.patch_size = patch_size
        self.img_size = img_size
        self.merge_method = merge_method
        self.modality_drop_rate = modality_drop_rate
        self.grad_checkpointing = grad_checkpointing
        self.out_indices = _resolve_out_indices(out_indices, depth)
        width = embed_dim * len(self.modalities) if merge_method == "concat" else embed_dim
        self.out_channels = [width] * len(self.out_indices)
        self.load_report: LoadReport | None = None
        self.mean: dict[str, list[float | None]] = {}  # pre-training statistics per modality, set by builders
        self.std: dict[str, list[float | None]] = {}

        self.encoder_embeddings = nn.ModuleDict(
            {m.key: ModalityEmbedding(m.channels, embed_dim, patch_size) for m in self.modalities}
        )
        if merge_method == "concat":
            self.missing_mod_token = nn.Parameter(torch.zeros(embed_dim))
        norm = functools.partial(nn.LayerNorm, eps=1e-6, bias=False)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.encoder = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio=4.0,
                qkv_bias=bias,
                proj_bias=bias,
                drop_path=rate,
                act_layer=nn.SiLU if gated_mlp else nn.GELU,
                norm_layer=norm,
                mlp_layer=_gated_mlp if gated_mlp else Mlp,
            )
            for rate in rates
        )
        self.encoder_norm = norm(embed_dim)
        grid = img_size // patch_size
        self.register_buffer("pos_emb", sincos_2d(grid, embed_dim), persistent=False)
        self._pos_cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}
        self._init_weights()

    def _init_weights(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                if name.endswith("qkv"):  # q, k and v initialised as three separate matrices
                    bound = math.sqrt(6.0 / (module.weight.shape[0] // 3 + module.weight.shape[1]))
                    nn.init.uniform_(module.weight, -bound, bound)
                else:
                    nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for embedding in self.encoder_embeddings.values():
            nn.init.normal_(embedding.mod_emb, std=0.02)
        if self.merge_method == "concat":
            nn.init.normal_(self.missing_mod_token, std=0.02)

    # -- positions ----------------------------------------------------------------------------------
    def position_embedding(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """``[1, h*w, D]``: the nominal table, bicubically resized to the ``h x w`` patch grid (as pre-trained)."""
        if is_exporting():
            return self._resized(height, width)
        if (height, width) == (self.img_size // self.patch_size,) * 2:
            return self.pos_emb
        key = (height, width, device)
        if key not in self._pos_cache:
            if len(self._pos_cache) > 16:
                self._pos_cache.clear()
            self._pos_cache[key] = self._resized(height, width)
        return self._pos_cache[key]

    def _resized(self, height: int, width: int) -> torch.Tensor:
        grid = self.img_size // self.patch_size
        table = self.pos_emb.reshape(1, grid, grid, self.embed_dim).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=(height, width), mode="bicubic", align_corners=False)
        return table.permute(0, 2, 3, 1).reshape(1, -1, self.embed_dim)

    # -- forward ------------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor | Mapping[str, torch.Tensor],
        temporal_coords: torch.Tensor | None = None,
        location_coords: torch.Tensor | None = None,
    ) -> list[torch.Tensor] | list[dict[str, torch.Tensor]]:
        """Tokens after each block in ``out_indices``, merged across modalities by ``merge_method``.

        Args:
            x: one tensor ``[B, C, H, W]`` (the first configured modality) or ``{modality: [B, C, H, W]}``
                with any non-empty subset of the configured modalities.
        """
        if temporal_coords is not None or location_coords is not None:
            raise ConfigError(
                "TerraMind encoders take no temporal_coords / location_coords",
                hint="drop the coordinates from the batch, or use a Prithvi _tl backbone",
            )
        inputs = self._inputs(x)
        if self.training and self.modality_drop_rate and len(inputs) > 1 and not is_exporting():
            inputs = self._drop_modalities(inputs)
        tokens, counts = [], []
        for modality, tensor in inputs.items():
            embedding = self.encoder_embeddings[modality.key]
            patches = embedding(tensor)
            grid = (tensor.shape[-2] // self.patch_size, tensor.shape[-1] // self.patch_size)
            position = self.position_embedding(grid[0], grid[1], patches.device)
            tokens.append(patches + (position + embedding.mod_emb).to(patches.dtype))
            counts.append(patches.shape[1])
        h = torch.cat(tokens, dim=1) if len(tokens) > 1 else tokens[0]

        wanted = set(self.out_indices)
        outputs: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.encoder[: max(wanted) + 1]):
            if self.grad_checkpointing and torch.is_grad_enabled():
                h = checkpoint(block, h, use_reentrant=False)
            else:
                h = block(h)
            if i in wanted:
                outputs[i] = self.encoder_norm(h) if i == self.depth - 1 else h
        return [self._merge(outputs[i], list(inputs), counts) for i in self.out_indices]

    def _inputs(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> dict[Modality, torch.Tensor]:
        if isinstance(x, torch.Tensor):
            x = {self.modalities[0].name: x}
        if not isinstance(x, Mapping) or not x:
            raise ConfigError(
                f"TerraMind expects a tensor or a non-empty dict {{modality: tensor}}, got {type(x).__name__}"
            )
        found: dict[Modality, torch.Tensor] = {}
        for name, tensor in x.items():
            modality = find_modality(self.modalities, name)
            if modality is None:
                raise ConfigError(
                    f"input modality {name!r} is not configured; this encoder reads "
                    f"{', '.join(m.name for m in self.modalities)}",
                    hint="add it to the backbone's modalities, or drop it from the input",
                )
            if tensor.ndim != 4 or tensor.shape[1] != modality.channels:
                raise ConfigError(
                    f"modality {modality.name} must be [B, {modality.channels}, H, W] (bands "
                    f"{', '.join(map(str, modality.bands))}), got shape {list(tensor.shape)}"
                )
            if not is_exporting() and (
                tensor.shape[-2] % self.patch_size or tensor.shape[-1] % self.patch_size
            ):
                raise ConfigError(
                    f"modality {modality.name}: {tensor.shape[-2]} x {tensor.shape[-1]} px is not a multiple of "
                    f"the patch size {self.patch_size}",
                    hint="pad or crop to multiples of 16 (the model factories pad automatically)",
                )
            found[modality] = tensor
        # configured order, so that outputs do not depend on the order of the input dict
        return {m: found[m] for m in self.modalities if m in found}

    def _drop_modalities(self, inputs: dict[Modality, torch.Tensor]) -> dict[Modality, torch.Tensor]:
        names = list(inputs)
        keep = names[int(torch.randint(len(names), (1,)))]
        return {
            m: t for m, t in inputs.items() if m == keep or float(torch.rand(())) >= self.modality_drop_rate
        }

    def _merge(
        self, h: torch.Tensor, present: list[Modality], counts: list[int]
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.merge_method is None:
            return h
        parts = torch.split(h, counts, dim=1) if len(counts) > 1 else (h,)
        if self.merge_method == "dict":
            return {m.name: part for m, part in zip(present, parts)}
        if any(n != counts[0] for n in counts[1:]):
            raise ConfigError(
                f"merge_method={self.merge_method!r} needs every modality at the same size; got "
                + ", ".join(f"{m.name}: {n} tokens" for m, n in zip(present, counts)),
                hint="resample the modalities to one grid, or use merge_method='dict'",
            )
        if self.merge_method == "concat":
            by_modality = dict(zip(present, parts))
            missing = self.missing_mod_token.to(h.dtype).expand_as(parts[0])
            return torch.cat([by_modality.get(m, missing) for m in self.modalities], dim=-1)
        if len(parts) == 1:
            return parts[0]
        stacked = torch.stack(parts, dim=1)
        return stacked.mean(dim=1) if self.merge_method == "mean" else stacked.max(dim=1).values


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
