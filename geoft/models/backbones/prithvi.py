"""Prithvi-EO variants as registry builders: ``BACKBONE_REGISTRY.build("prithvi_eo_v2_300_tl", ...)``.

Hyper-parameters are those of the published models (and TerraTorch's ``prithvi_cfgs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from geoft.errors import ConfigError
from geoft.models.backbones.arguments import checked_arguments
from geoft.models.backbones.bands import PRITHVI_BANDS, BandLike, band_label, normalize_bands
from geoft.models.backbones.prithvi_vit import PrithviViT
from geoft.models.backbones.prithvi_weights import (
    PUBLISHED_WEIGHTS,
    download_published,
    load_prithvi_checkpoint,
)

PRITHVI_V1_MEAN = (775.0, 1081.0, 1229.0, 2497.0, 2204.0, 1611.0)
PRITHVI_V1_STD = (1282.0, 1270.0, 1399.0, 1368.0, 1292.0, 1155.0)
PRITHVI_V2_MEAN = (1087.0, 1342.0, 1433.0, 2734.0, 1958.0, 1363.0)
PRITHVI_V2_STD = (2248.0, 2179.0, 2178.0, 1850.0, 1242.0, 1049.0)


@dataclass(frozen=True)
class PrithviVariant:
    """Architecture of a Prithvi-EO model and the statistics of its pretraining data (HLS reflectance x 10000)."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: tuple[int, int, int] = (1, 16, 16)
    coords_encoding: tuple[str, ...] = ()
    coords_scale_learn: bool = False
    pretrain_frames: int = 4
    mean: tuple[float, ...] = PRITHVI_V2_MEAN
    std: tuple[float, ...] = PRITHVI_V2_STD
    bands: tuple[BandLike, ...] = field(default=PRITHVI_BANDS)


_TL = {"coords_encoding": ("time", "location"), "coords_scale_learn": True}

PRITHVI_VARIANTS: dict[str, PrithviVariant] = {
    "prithvi_eo_tiny": PrithviVariant(embed_dim=256, depth=4, num_heads=4, pretrain_frames=1),
    "prithvi_eo_v1_100": PrithviVariant(
        embed_dim=768, depth=12, num_heads=12, pretrain_frames=3, mean=PRITHVI_V1_MEAN, std=PRITHVI_V1_STD
    ),
    "prithvi_eo_v2_tiny_tl": PrithviVariant(embed_dim=192, depth=12, num_heads=3, **_TL),
    "prithvi_eo_v2_100_tl": PrithviVariant(embed_dim=768, depth=12, num_heads=12, **_TL),
    "prithvi_eo_v2_300": PrithviVariant(embed_dim=1024, depth=24, num_heads=16),
    "prithvi_eo_v2_300_tl": PrithviVariant(embed_dim=1024, depth=24, num_heads=16, **_TL),
    "prithvi_eo_v2_600": PrithviVariant(embed_dim=1280, depth=32, num_heads=16, patch_size=(1, 14, 14)),
    "prithvi_eo_v2_600_tl": PrithviVariant(
        embed_dim=1280, depth=32, num_heads=16, patch_size=(1, 14, 14), **_TL
    ),
}


def build_prithvi(
    variant: str,
    *,
    pretrained: bool = False,
    ckpt_path: str | Path | None = None,
    bands: Sequence[BandLike] | None = None,
    pretrained_bands: Sequence[BandLike] | None = None,
    in_chans: int | None = None,
    num_frames: int = 1,
    img_size: int | Sequence[int] = 224,
    out_indices: Sequence[int] | None = None,
    drop_path: float = 0.0,
    depth: int | None = None,
    coords_encoding: Sequence[str] | None = None,
    grad_checkpointing: bool = False,
) -> PrithviViT:
    """Build a Prithvi-EO encoder, loading weights from ``ckpt_path`` or the Hub (``pretrained=True``).

    Args:
        variant: a key of :data:`PRITHVI_VARIANTS`.
        pretrained: download the published weights (needs internet once; cached afterwards).
        ckpt_path: load this local file instead (wins over ``pretrained``).
        bands: the bands of the input channels, in order (names like "RED", "NIR_NARROW", free
            strings for new bands, or ints). Default: the six pretrained HLS bands.
        pretrained_bands: the bands of the checkpoint's patch embedding (default: the six HLS bands).
        in_chans: number of input channels when ``bands`` is not given (no weights, or 6).
        num_frames: nominal number of time steps (inputs may have other counts).
        img_size: nominal image size (inputs may be other multiples of the patch size).
        out_indices: blocks whose tokens are returned (default: every block).
        drop_path: stochastic depth rate.
        depth: fewer (or more) blocks than the published model, e.g. for quick tests.
        coords_encoding: override the variant's metadata encodings, e.g. ``["time"]`` to use a
            ``_tl`` model without its location encoding (its weight is then dropped when loading).
        grad_checkpointing: trade compute for memory when fine-tuning the big variants.
    """
    if variant not in PRITHVI_VARIANTS:
        raise ConfigError(f"Unknown Prithvi variant {variant!r}; known: {', '.join(PRITHVI_VARIANTS)}")
    cfg = PRITHVI_VARIANTS[variant]
    wants_weights = bool(pretrained) or ckpt_path is not None
    ckpt_bands = (
        normalize_bands(pretrained_bands, "pretrained_bands") if pretrained_bands else list(cfg.bands)
    )
    model_bands = _model_bands(bands, in_chans, ckpt_bands, wants_weights)
    if pretrained and ckpt_path is None and variant not in PUBLISHED_WEIGHTS:
        raise ConfigError(
            f"{variant} has no published weights.",
            hint=f"Use pretrained=False, pass ckpt_path=..., or pick one of {', '.join(PUBLISHED_WEIGHTS)}.",
        )

    model = PrithviViT(
        in_chans=len(model_bands) if model_bands is not None else int(in_chans),  # type: ignore[arg-type]
        embed_dim=cfg.embed_dim,
        depth=cfg.depth if depth is None else depth,
        num_heads=cfg.num_heads,
        patch_size=cfg.patch_size,
        img_size=img_size,
        num_frames=num_frames,
        coords_encoding=cfg.coords_encoding if coords_encoding is None else tuple(coords_encoding),
        coords_scale_learn=cfg.coords_scale_learn,
        drop_path=drop_path,
        out_indices=out_indices,
        grad_checkpointing=grad_checkpointing,
    )
    model.bands = model_bands
    model.mean = _per_band(cfg.mean, list(cfg.bands), model_bands)
    model.std = _per_band(cfg.std, list(cfg.bands), model_bands)

    if ckpt_path is not None:
        load_prithvi_checkpoint(model, ckpt_path, ckpt_bands, name=variant)
    elif pretrained:
        path = download_published(variant)
        load_prithvi_checkpoint(
            model, path, ckpt_bands, name=variant, source=f"{PUBLISHED_WEIGHTS[variant].url}"
        )
    return model


def _model_bands(
    bands: Sequence[BandLike] | None,
    in_chans: int | None,
    ckpt_bands: list[BandLike],
    wants_weights: bool,
) -> list[BandLike] | None:
    if bands is not None:
        resolved = normalize_bands(bands)
        if in_chans is not None and in_chans != len(resolved):
            raise ConfigError(f"in_chans={in_chans} but bands lists {len(resolved)} bands; give only bands")
        return resolved
    if in_chans is None or in_chans == len(ckpt_bands):
        return list(ckpt_bands)
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ConfigError(f"in_chans must be a positive int, got {in_chans!r}")
    if wants_weights:
        raise ConfigError(
            f"in_chans={in_chans} differs from the {len(ckpt_bands)} pretrained bands "
            f"({', '.join(map(band_label, ckpt_bands))}), so the weights can't be matched to your channels.",
            hint="Pass bands=[...] naming each input channel (unknown names get fresh weights).",
        )
    return None


def _per_band(
    values: tuple[float, ...], stat_bands: list[BandLike], model_bands: list[BandLike] | None
) -> list[float | None] | None:
    """Pretraining statistic for each model band (None for bands outside the pretraining bands)."""
    if model_bands is None or len(values) != len(stat_bands):
        return None
    lookup = dict(zip(stat_bands, values))
    return [lookup.get(b) for b in model_bands]


def _builder(variant: str):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        pretrained_bands: Sequence[BandLike] | None = None,
        in_chans: int | None = None,
        num_frames: int = 1,
        img_size: int | Sequence[int] = 224,
        out_indices: Sequence[int] | None = None,
        drop_path: float = 0.0,
        depth: int | None = None,
        coords_encoding: Sequence[str] | None = None,
        grad_checkpointing: bool = False,
    ) -> PrithviViT:
        return build_prithvi(
            variant,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            bands=bands,
            pretrained_bands=pretrained_bands,
            in_chans=in_chans,
            num_frames=num_frames,
            img_size=img_size,
            out_indices=out_indices,
            drop_path=drop_path,
            depth=depth,
            coords_encoding=coords_encoding,
            grad_checkpointing=grad_checkpointing,
        )

    cfg = PRITHVI_VARIANTS[variant]
    build.__name__ = build.__qualname__ = variant
    build.__doc__ = (
        f"Prithvi-EO encoder {variant}: D={cfg.embed_dim}, {cfg.depth} blocks, {cfg.num_heads} heads, "
        f"patch {cfg.patch_size}"
        + (", time+location encoding" if cfg.coords_encoding else "")
        + ". Arguments: see :func:`build_prithvi`."
    )
    return checked_arguments(build)


prithvi_eo_tiny = _builder("prithvi_eo_tiny")
prithvi_eo_v1_100 = _builder("prithvi_eo_v1_100")
prithvi_eo_v2_tiny_tl = _builder("prithvi_eo_v2_tiny_tl")
prithvi_eo_v2_100_tl = _builder("prithvi_eo_v2_100_tl")
prithvi_eo_v2_300 = _builder("prithvi_eo_v2_300")
prithvi_eo_v2_300_tl = _builder("prithvi_eo_v2_300_tl")
prithvi_eo_v2_600 = _builder("prithvi_eo_v2_600")
prithvi_eo_v2_600_tl = _builder("prithvi_eo_v2_600_tl")
