"""Prithvi Swin encoders as registry builders: ``BACKBONE_REGISTRY.build("prithvi_swin_B", bands=[...])``.

Names, sizes and the pretrained band list are the reference's (TerraTorch's ``prithvi_swin_B`` /
``prithvi_swin_L``: patch 4, window 7, depths 2-2-18-2, HLS bands). No Prithvi Swin encoder is
published on the Hugging Face Hub, and the reference has no download for them either (its
``pretrained=True`` falls back to random weights with a printed note); here ``pretrained=True``
without ``ckpt_path`` is an error that says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from geoft.errors import ConfigError
from geoft.models.backbones.arguments import checked_arguments
from geoft.models.backbones.bands import PRITHVI_BANDS, BandLike, band_label, normalize_bands
from geoft.models.backbones.prithvi_swin_model import PrithviSwin
from geoft.models.backbones.prithvi_swin_weights import load_swin_checkpoint


@dataclass(frozen=True)
class SwinVariant:
    embed_dim: int
    num_heads: tuple[int, ...]
    depths: tuple[int, ...] = (2, 2, 18, 2)
    window_size: int = 7


SWIN_VARIANTS: dict[str, SwinVariant] = {
    "prithvi_swin_B": SwinVariant(embed_dim=128, num_heads=(4, 8, 16, 32)),
    "prithvi_swin_L": SwinVariant(embed_dim=192, num_heads=(6, 12, 24, 48)),
}


def build_prithvi_swin(
    variant: str,
    *,
    pretrained: bool = False,
    ckpt_path: str | Path | None = None,
    bands: Sequence[BandLike] | None = None,
    pretrained_bands: Sequence[BandLike] | None = None,
    in_chans: int | None = None,
    num_frames: int = 1,
    window_size: int | None = None,
    depths: Sequence[int] | None = None,
    drop_path_rate: float = 0.1,
    out_indices: Sequence[int] | None = None,
    grad_checkpointing: bool = False,
) -> PrithviSwin:
    """Build a Prithvi Swin encoder, loading ``ckpt_path`` when given.

    Args:
        variant: a key of :data:`SWIN_VARIANTS`.
        pretrained: there are no published weights; True without ``ckpt_path`` is an error.
        ckpt_path: a checkpoint in the original Swin / SimMIM layout or in the reference's layout.
        bands: bands of the input channels (default: the six HLS bands); bands outside
            ``pretrained_bands`` get fresh patch-embedding weights.
        pretrained_bands: bands of the checkpoint's patch embedding (default: the six HLS bands).
        in_chans: number of input channels when ``bands`` is not given.
        num_frames: must be 1 (the Swin is single-frame; accepted for the reference's configs).
        window_size: attention window (default 7; a checkpoint's bias tables are resized to fit).
        depths: blocks per stage, e.g. ``[1, 1, 1, 1]`` for quick tests.
        drop_path_rate: stochastic depth (the reference's default 0.1).
        out_indices: stages returned (default all four).
        grad_checkpointing: trade compute for memory.
    """
    if variant not in SWIN_VARIANTS:
        raise ConfigError(f"Unknown Prithvi Swin variant {variant!r}; known: {', '.join(SWIN_VARIANTS)}")
    if pretrained and ckpt_path is None:
        raise ConfigError(
            f"{variant} has no published weights to download (none are on the Hugging Face Hub; the "
            "reference silently uses random weights here).",
            hint="Pass ckpt_path=... (a Prithvi Swin checkpoint, original Swin or TerraTorch layout), "
            "or build with pretrained=False.",
        )
    if num_frames != 1:
        raise ConfigError(f"{variant} takes single images; num_frames={num_frames} is not supported")
    cfg = SWIN_VARIANTS[variant]
    ckpt_bands = (
        normalize_bands(pretrained_bands, "pretrained_bands") if pretrained_bands else list(PRITHVI_BANDS)
    )
    model_bands = _model_bands(bands, in_chans, ckpt_bands, ckpt_path is not None)
    model = PrithviSwin(
        in_chans=len(model_bands) if model_bands is not None else int(in_chans),  # type: ignore[arg-type]
        embed_dim=cfg.embed_dim,
        depths=tuple(depths) if depths is not None else cfg.depths,
        num_heads=cfg.num_heads,
        window_size=cfg.window_size if window_size is None else window_size,
        drop_path_rate=drop_path_rate,
        out_indices=out_indices,
        grad_checkpointing=grad_checkpointing,
    )
    model.bands = model_bands
    if ckpt_path is not None:
        load_swin_checkpoint(model, ckpt_path, ckpt_bands, name=variant)
    return model


def _model_bands(
    bands: Sequence[BandLike] | None, in_chans: int | None, ckpt_bands: list[BandLike], wants_weights: bool
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


def _builder(variant: str):  # noqa: ANN202 - returns a typed builder
    def build(
        *,
        pretrained: bool = False,
        ckpt_path: str | Path | None = None,
        bands: Sequence[BandLike] | None = None,
        pretrained_bands: Sequence[BandLike] | None = None,
        in_chans: int | None = None,
        num_frames: int = 1,
        window_size: int | None = None,
        depths: Sequence[int] | None = None,
        drop_path_rate: float = 0.1,
        out_indices: Sequence[int] | None = None,
        grad_checkpointing: bool = False,
    ) -> PrithviSwin:
        return build_prithvi_swin(
            variant,
            pretrained=pretrained,
            ckpt_path=ckpt_path,
            bands=bands,
            pretrained_bands=pretrained_bands,
            in_chans=in_chans,
            num_frames=num_frames,
            window_size=window_size,
            depths=depths,
            drop_path_rate=drop_path_rate,
            out_indices=out_indices,
            grad_checkpointing=grad_checkpointing,
        )

    cfg = SWIN_VARIANTS[variant]
    build.__name__ = build.__qualname__ = variant
    build.__doc__ = (
        f"Prithvi Swin encoder {variant}: C={cfg.embed_dim} doubling per stage, depths {cfg.depths}, window "
        f"{cfg.window_size}; returns a 4-level pyramid. Arguments: see :func:`build_prithvi_swin`."
    )
    return checked_arguments(build)


prithvi_swin_B = _builder("prithvi_swin_B")  # noqa: N816 - the reference's name
prithvi_swin_L = _builder("prithvi_swin_L")  # noqa: N816 - the reference's name
