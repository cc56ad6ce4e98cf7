"""TerraMind encoders (IBM / ESA) as registry builders: ``BACKBONE_REGISTRY.build("terramind_v1_base", ...)``.

Hyper-parameters are those of the published models (and TerraTorch's ``terramind_register``);
argument names are the reference's, so its configs carry over. Raw modalities only: tokenizer-based
inputs and Thinking-in-Modalities (TiM) generation are out of scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from geoft.errors import ConfigError
from geoft.models.backbones.arguments import checked_arguments
from geoft.models.backbones.bands import BandLike
from geoft.models.backbones.terramind_modalities import (
    OUT_OF_SCOPE_HINT,
    RAW_MODALITIES,
    per_band_statistics,
    resolve_modalities,
)
from geoft.models.backbones.terramind_vit import TerraMindViT
from geoft.models.backbones.terramind_weights import (
    PUBLISHED_WEIGHTS,
    download_published,
    load_terramind_checkpoint,
)


@dataclass(frozen=True)
class TerraMindVariant:
    """Architecture of a TerraMind encoder and what its published checkpoint holds."""

    embed_dim: int
    depth: int
    num_heads: int
    gated_mlp: bool  # SwiGLU + SiLU without biases (base, large) vs GELU MLP with biases (tiny, small)
    version: str = "v1"  # key of the pre-training statistics
    published_modalities: tuple[str, ...] = tuple(RAW_MODALITIES)


TERRAMIND_VARIANTS: dict[str, TerraMindVariant] = {
    "terramind_v1_tiny": TerraMindVariant(embed_dim=192, depth=12, num_heads=3, gated_mlp=False),
    "terramind_v1_small": TerraMindVariant(embed_dim=384, depth=12, num_heads=6, gated_mlp=False),
    "terramind_v1_base": TerraMindVariant(embed_dim=768, depth=12, num_heads=12, gated_mlp=True),
    "terramind_v1_large": TerraMindVariant(embed_dim=1024, depth=24, num_heads=16, gated_mlp=True),
    "terramind_v01_base": TerraMindVariant(
        embed_dim=768, depth=12, num_heads=12, gated_mlp=True, version="v01", published_modalities=("S2L2A",)
    ),
}

ModalitiesArg = Sequence[str | Mapping[str, int]] | Mapping[str, int] | None
BandsArg = Mapping[str, Sequence[BandLike]] | Sequence[BandLike] | None


def build_terramind(
    variant: str,
    *,
    pretrained: bool = False,
    ckpt_path: str | Path | None = None,
    modalities: ModalitiesArg = None,
    bands: BandsArg = None,
    pretrained_bands: Mapping[str, Sequence[BandLike]] | None = None,
    merge_method: str | None = "mean",
    img_size: int = 224,
    out_indices: Sequence[int] | None = None,
    drop_path_rate: float = 0.0,
    modality_drop_rate: float = 0.0,
    depth: int | None = None,
    grad_checkpointing: bool = False,
    tim_modalities: Sequence[str] | None = None,
) -> TerraMindViT:
    """Build a TerraMind encoder, loading weights from ``ckpt_path`` or the Hub (``pretrained=True``).

    Args:
        variant: a key of :data:`TERRAMIND_VARIANTS`.
        pretrained: download the published weights (needs internet once; cached afterwards).
        ckpt_path: load this local file instead (wins over ``pretrained``).
        modalities: raw modalities (``S2L2A``, ``S2L1C``, ``S2RGB``, ``S1GRD``, ``S1RTC``, ``DEM``) and
            user-defined ones as ``{name: channels}``, in order. Default ``["S2L2A"]``.
        bands: ``{modality: [band, ...]}``: the band of each input channel (a plain list for a single
            modality). Patch-embedding weights are selected from the published bands; unknown bands
            start fresh. Default: the published bands.
        pretrained_bands: ``{modality: [band, ...]}`` when the checkpoint's bands differ from the published ones.
        merge_method: ``mean``, ``max``, ``concat``, ``dict`` or None (see :class:`TerraMindViT`).
        img_size: nominal image size of the position table (inputs may be other multiples of 16).
        out_indices: blocks whose tokens are returned (default: every block).
        drop_path_rate: stochastic depth rate.
        modality_drop_rate: while training, drop input modalities (all but one) with this chance.
        depth: fewer blocks than the published model, e.g. for quick tests (later blocks are dropped).
        grad_checkpointing: trade compute for memory when fine-tuning the big variants.
        tim_modalities: Thinking-in-Modalities is not supported; giving any is a ConfigError.
    """
    if variant not in TERRAMIND_VARIANTS:
        raise ConfigError(f"Unknown TerraMind variant {variant!r}; known: {', '.join(TERRAMIND_VARIANTS)}")
    if tim_modalities:
        raise ConfigError(
            f"{variant}: tim_modalities={list(tim_modalities)} asks for Thinking-in-Modalities.",
            hint=OUT_OF_SCOPE_HINT,
        )
    cfg = TERRAMIND_VARIANTS[variant]
    resolved = resolve_modalities(modalities, bands, pretrained_bands)
    model = TerraMindViT(
        resolved,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth if depth is None else depth,
        num_heads=cfg.num_heads,
        gated_mlp=cfg.gated_mlp,
        bias=not cfg.gated_mlp,
        img_size=img_size,
        merge_method=merge_method,
        out_indices=out_indices,
        drop_path_rate=drop_path_rate,
        modality_drop_rate=modality_drop_rate,
        grad_checkpointing=grad_checkpointing,
    )
    model.mean, model.std = per_band_statistics(cfg.version, resolved)
    if ckpt_path is not None:
        load_terramind_checkpoint(model, ckpt_path, cfg.published_modalities, name=variant)
    elif pretrained:
        path = download_published(variant)
        load_terramind_checkpoint(
            model, path, cfg.published_modalities, name=variant, source=PUBLISHED_WEIGHTS[variant].url
        )
    return model


def _builder(variant: str):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        modalities: ModalitiesArg = None,
        bands: BandsArg = None,
        pretrained_bands: Mapping[str, Sequence[BandLike]] | None = None,
        merge_method: str | None = "mean",
        img_size: int = 224,
        out_indices: Sequence[int] | None = None,
        drop_path_rate: float = 0.0,
        modality_drop_rate: float = 0.0,
        depth: int | None = None,
        grad_checkpointing: bool = False,
        tim_modalities: Sequence[str] | None = None,
    ) -> TerraMindViT:
        return build_terramind(
            variant,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            modalities=modalities,
            bands=bands,
            pretrained_bands=pretrained_bands,
            merge_method=merge_method,
            img_size=img_size,
            out_indices=out_indices,
            drop_path_rate=drop_path_rate,
            modality_drop_rate=modality_drop_rate,
            depth=depth,
            grad_checkpointing=grad_checkpointing,
            tim_modalities=tim_modalities,
        )

    cfg = TERRAMIND_VARIANTS[variant]
    build.__name__ = build.__qualname__ = variant
    build.__doc__ = (
        f"TerraMind encoder {variant}: D={cfg.embed_dim}, {cfg.depth} blocks, {cfg.num_heads} heads, "
        f"{'SwiGLU' if cfg.gated_mlp else 'GELU'} MLP. Arguments: see :func:`build_terramind`."
    )
    return checked_arguments(build)


terramind_v1_tiny = _builder("terramind_v1_tiny")
terramind_v1_small = _builder("terramind_v1_small")
terramind_v1_base = _builder("terramind_v1_base")
terramind_v1_large = _builder("terramind_v1_large")
terramind_v01_base = _builder("terramind_v01_base")
