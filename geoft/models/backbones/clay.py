"""Clay v1 and v1.5 encoders as registry builders: ``BACKBONE_REGISTRY.build("clay_v1_base", bands=[...])``.

Names are the reference's (TerraTorch's): ``clay_v1_base`` for Clay v1, ``clay_mae_tiny|small|base|large``
for the v1.5 encoders (only ``clay_mae_large`` has published weights, the Clay v1.5 release).
Hyper-parameters are those of the published models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from geoft.errors import ConfigError
from geoft.models.backbones.arguments import checked_arguments
from geoft.models.backbones.bands import Band, BandLike
from geoft.models.backbones.clay_embed import CLAY_MEAN, CLAY_STD, band_wavelengths
from geoft.models.backbones.clay_vit import ClayViT
from geoft.models.backbones.clay_weights import PUBLISHED_WEIGHTS, download_published, load_clay_checkpoint

#: Default bands: those of the reference's Clay backbone (Clay's blue, green, red, nir, swir16, swir22).
CLAY_DEFAULT_BANDS: tuple[Band, ...] = (
    Band.BLUE,
    Band.GREEN,
    Band.RED,
    Band.NIR_BROAD,
    Band.SWIR_1,
    Band.SWIR_2,
)
#: Sentinel-2's 10 m GSD, the sensor of the default bands (Clay's metadata.yaml).
CLAY_DEFAULT_GSD = 10.0


@dataclass(frozen=True)
class ClayVariant:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    patch_size: int = 8


CLAY_VARIANTS: dict[str, ClayVariant] = {
    "clay_v1_base": ClayVariant(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
    "clay_mae_tiny": ClayVariant(embed_dim=192, depth=6, num_heads=4, mlp_ratio=2.0),
    "clay_mae_small": ClayVariant(embed_dim=384, depth=6, num_heads=6, mlp_ratio=2.0),
    "clay_mae_base": ClayVariant(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
    "clay_mae_large": ClayVariant(embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0),
}


def build_clay(
    variant: str,
    *,
    pretrained: bool = False,
    ckpt_path: str | Path | None = None,
    bands: Sequence[BandLike] | None = None,
    wavelengths: Sequence[float] | None = None,
    gsd: float = CLAY_DEFAULT_GSD,
    img_size: int = 256,
    out_indices: Sequence[int] | None = None,
    drop_path: float = 0.0,
    depth: int | None = None,
    grad_checkpointing: bool = False,
) -> ClayViT:
    """Build a Clay encoder, loading weights from ``ckpt_path`` or the Hub (``pretrained=True``).

    Args:
        variant: a key of :data:`CLAY_VARIANTS`.
        pretrained: download the published weights (``clay_v1_base`` and ``clay_mae_large``).
        ckpt_path: load this local file instead (wins over ``pretrained``).
        bands: band of each input channel, by name (geoft's ``SWIR_1`` or Clay's ``swir16``); the
            patch kernels are generated from their wavelengths. Default: :data:`CLAY_DEFAULT_BANDS`.
        wavelengths: centre wavelengths in micrometres, one per band, only for bands geoft has no
            wavelength for.
        gsd: ground sample distance of the input in metres (Sentinel-2: 10, Landsat: 30, NAIP: 1).
        img_size: nominal image size (inputs may be other multiples of the patch size 8).
        out_indices: blocks whose tokens are returned (default: every block).
        drop_path: stochastic depth rate.
        depth: fewer blocks than the published model, e.g. for quick tests.
        grad_checkpointing: trade compute for memory.
    """
    if variant not in CLAY_VARIANTS:
        raise ConfigError(f"Unknown Clay variant {variant!r}; known: {', '.join(CLAY_VARIANTS)}")
    if pretrained and ckpt_path is None and variant not in PUBLISHED_WEIGHTS:
        raise ConfigError(
            f"{variant} has no published weights (Clay published v1 base and the v1.5 large encoder).",
            hint=f"Use pretrained=False, pass ckpt_path=..., or pick one of {', '.join(PUBLISHED_WEIGHTS)}.",
        )
    cfg = CLAY_VARIANTS[variant]
    model_bands, waves = band_wavelengths(
        list(bands) if bands is not None else list(CLAY_DEFAULT_BANDS), wavelengths
    )
    model = ClayViT(
        waves=waves,
        gsd=gsd,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth if depth is None else depth,
        num_heads=cfg.num_heads,
        mlp_ratio=cfg.mlp_ratio,
        patch_size=cfg.patch_size,
        img_size=img_size,
        out_indices=out_indices,
        drop_path=drop_path,
        grad_checkpointing=grad_checkpointing,
    )
    model.bands = model_bands
    model.mean = [CLAY_MEAN.get(b) for b in model_bands]  # type: ignore[call-overload]
    model.std = [CLAY_STD.get(b) for b in model_bands]  # type: ignore[call-overload]
    if ckpt_path is not None:
        load_clay_checkpoint(model, ckpt_path, name=variant)
    elif pretrained:
        path = download_published(variant)
        load_clay_checkpoint(model, path, name=variant, source=PUBLISHED_WEIGHTS[variant].url)
    return model


def _builder(variant: str):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        wavelengths: Sequence[float] | None = None,
        gsd: float = CLAY_DEFAULT_GSD,
        img_size: int = 256,
        out_indices: Sequence[int] | None = None,
        drop_path: float = 0.0,
        depth: int | None = None,
        grad_checkpointing: bool = False,
    ) -> ClayViT:
        return build_clay(
            variant,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            bands=bands,
            wavelengths=wavelengths,
            gsd=gsd,
            img_size=img_size,
            out_indices=out_indices,
            drop_path=drop_path,
            depth=depth,
            grad_checkpointing=grad_checkpointing,
        )

    cfg = CLAY_VARIANTS[variant]
    build.__name__ = build.__qualname__ = variant
    build.__doc__ = (
        f"Clay encoder {variant}: D={cfg.embed_dim}, {cfg.depth} blocks, {cfg.num_heads} heads, patch "
        f"{cfg.patch_size}, wavelength- and GSD-conditioned. Arguments: see :func:`build_clay`."
    )
    return checked_arguments(build)


clay_v1_base = _builder("clay_v1_base")
clay_mae_tiny = _builder("clay_mae_tiny")
clay_mae_small = _builder("clay_mae_small")
clay_mae_base = _builder("clay_mae_base")
clay_mae_large = _builder("clay_mae_large")
