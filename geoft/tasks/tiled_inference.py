"""Tiled inference: run a model on images of any size through overlapping, blended tiles.

The image is cut into ``crop x crop`` tiles on a regular grid with step ``stride``. Every tile's
prediction is multiplied by a separable window (cosine, linear or flat) and summed; the sum is
divided by the summed windows. The windows are strictly positive, so a model that returns its input
reproduces the input exactly (no seams), whatever the image size. Beyond the image border the input
is mirrored (``reflect``) or repeated (``replicate``), and a ``halo`` of mirrored pixels keeps image
border pixels away from tile borders, where models are least reliable.

The image may be one tensor ``[B, C, H, W]`` / ``[B, C, T, H, W]`` or a modality dict of them on one
grid (``{"S2": [B, 6, H, W], "S1": [B, 2, H, W]}``): tiles are then cut alike from every modality and
the model receives a dict of tiles.

The same grid logic drives the GeoTIFF-to-GeoTIFF path in :mod:`geoft.io.scene`, which applies it
block by block so that memory does not grow with the scene.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import torch

from geoft.errors import ConfigError

Blend = Literal["cosine", "linear", "none"]
Padding = Literal["reflect", "replicate"]
Image = torch.Tensor | Mapping[str, torch.Tensor]  # one tensor, or one per modality on one grid

# Argument names of the reference (TerraTorch) mapped to ours, so its configs keep working.
_REFERENCE_NAMES = {"h_crop": "crop", "w_crop": "crop", "h_stride": "stride", "w_stride": "stride"}


@dataclass(frozen=True)
class TiledInferenceParameters:
    """How to tile an image.

    Args:
        crop: tile size in pixels (the model's input size), ``int`` or ``(h, w)``.
        stride: step between tiles, ``<= crop``; default ``crop - crop // 7`` (e.g. 192 for 224).
        batch_size: how many tiles go through the model at once (bounds memory).
        blend: window that weights each tile's prediction: ``cosine`` (Hann-like, smooth seams),
            ``linear`` (triangular) or ``none`` (plain average of overlapping tiles).
        padding: how pixels beyond the image border are filled: ``reflect`` or ``replicate``.
        halo: pixels of padding added around the image before tiling; default ``(crop - stride) // 2``.
    """

    crop: int | tuple[int, int] = 224
    stride: int | tuple[int, int] | None = None
    batch_size: int = 16
    blend: Blend = "cosine"
    padding: Padding = "reflect"
    halo: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        crop = _pair(self.crop, "crop")
        stride = _pair(self.stride, "stride") if self.stride is not None else tuple(c - c // 7 for c in crop)
        halo = (
            _pair(self.halo, "halo")
            if self.halo is not None
            else tuple((c - s) // 2 for c, s in zip(crop, stride))
        )
        for c, s, h in zip(crop, stride, halo):
            if c < 1:
                raise ConfigError(f"tiled inference: crop must be >= 1, got {self.crop!r}")
            if not 1 <= s <= c:
                raise ConfigError(
                    f"tiled inference: stride must be between 1 and crop ({c}), got {self.stride!r}",
                    hint="tiles must overlap or touch; use stride <= crop",
                )
            if h < 0:
                raise ConfigError(f"tiled inference: halo must be >= 0, got {self.halo!r}")
        if self.batch_size < 1:
            raise ConfigError(f"tiled inference: batch_size must be >= 1, got {self.batch_size}")
        if self.blend not in ("cosine", "linear", "none"):
            raise ConfigError(
                f"tiled inference: blend must be 'cosine', 'linear' or 'none', got {self.blend!r}"
            )
        if self.padding not in ("reflect", "replicate"):
            raise ConfigError(
                f"tiled inference: padding must be 'reflect' or 'replicate', got {self.padding!r}"
            )
        object.__setattr__(self, "crop", crop)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "halo", halo)

    @classmethod
    def from_any(cls, value: TiledInferenceParameters | Mapping[str, Any] | None) -> TiledInferenceParameters:
        """Build from a dict (as written in a config), an instance, or ``None`` (defaults).

        The reference's names ``h_crop``/``w_crop``/``h_stride``/``w_stride``/``average_patches`` are
        accepted; any other unknown key is an error that names it.
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"tiled_inference_parameters must be a mapping, got {type(value).__name__}",
                hint=f"use keys among {[f.name for f in fields(cls)]}",
            )
        args = dict(value)
        out: dict[str, Any] = {}
        for ref, ours in _REFERENCE_NAMES.items():
            if ref in args:
                h_or_w = 0 if ref.startswith("h_") else 1
                pair = list(out.get(ours) or (None, None))
                pair[h_or_w] = args.pop(ref)
                out[ours] = pair
        if "average_patches" in args:
            out["blend"] = "none" if args.pop("average_patches") else "cosine"
        args.pop("verbose", None)  # the reference's progress flag; we have nothing to print
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ConfigError(
                f"unknown tiled_inference_parameters {unknown}",
                hint=f"valid keys: {sorted(known)}",
            )
        for key, pair in out.items():
            if isinstance(pair, list):
                filled = [p if p is not None else args.get(key) for p in pair]
                if None in filled:
                    other = pair[0] if pair[0] is not None else pair[1]
                    filled = [other, other]
                out[key] = tuple(filled)
        return cls(**{**args, **out})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pair(value: int | Sequence[int] | None, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ConfigError(f"tiled inference: {name} must be an int or a pair of ints, got {value!r}")


# -- grid -------------------------------------------------------------------------------------------


def tile_starts(length: int, crop: int, stride: int, halo: int) -> list[int]:
    """Start offsets of the tiles along one axis, in image coordinates (may be negative).

    Tiles cover ``[-halo, length + halo)``; the last one is shifted back to end there. An axis
    shorter than a tile gets a single tile.
    """
    first, end = -halo, length + halo
    if end - first <= crop:
        return [first]
    starts = list(range(first, end - crop, stride))
    starts.append(end - crop)
    return starts


def window_1d(crop: int, blend: Blend) -> np.ndarray:
    """Strictly positive blending weights for one tile axis (float64)."""
    centre = (np.arange(crop, dtype=np.float64) + 0.5) / crop
    if blend == "cosine":
        return 0.5 - 0.5 * np.cos(2 * np.pi * centre)
    if blend == "linear":
        return 1.0 - np.abs(2.0 * centre - 1.0)
    return np.ones(crop, dtype=np.float64)


def weight_sum_1d(starts: Sequence[int], origin: int, extent: int, window: np.ndarray) -> np.ndarray:
    """Sum of the windows of tiles at ``starts`` over ``[origin, origin + extent)``."""
    total = np.zeros(extent, dtype=np.float64)
    crop = len(window)
    for s in starts:
        total[s - origin : s - origin + crop] += window
    return total


def source_indices(start: int, stop: int, length: int, padding: Padding) -> np.ndarray:
    """Indices into ``[0, length)`` for image coordinates ``[start, stop)``, mirrored or clamped outside."""
    idx = np.arange(start, stop)
    if padding == "replicate" or length == 1:
        return np.clip(idx, 0, length - 1)
    period = 2 * (length - 1)
    idx = np.mod(idx, period)
    return np.where(idx < length, idx, period - idx)


def _unwrap(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    inner = getattr(output, "output", None)
    if isinstance(inner, torch.Tensor):
        return inner
    raise TypeError(f"tiled inference: the model returned {type(output).__name__}, expected a tensor")


def reference_tensor(image: Image) -> torch.Tensor:
    """The tensor whose batch size, grid and device an image (or modality dict) has."""
    if isinstance(image, torch.Tensor):
        return image
    if not image:
        raise ValueError("tiled inference: the modality dict is empty")
    return next(iter(image.values()))


def map_image(image: Image, fn: Callable[[torch.Tensor], torch.Tensor]) -> Image:
    """``fn`` applied to the tensor, or to every modality of a dict."""
    if isinstance(image, torch.Tensor):
        return fn(image)
    return {m: fn(x) for m, x in image.items()}


def check_one_grid(image: Image) -> None:
    """Every modality of a dict must have the batch size and height/width of the first."""
    if isinstance(image, torch.Tensor):
        return
    first = reference_tensor(image)
    for x in image.values():
        if x.ndim < 3 or x.shape[0] != first.shape[0] or x.shape[-2:] != first.shape[-2:]:
            shapes = {k: tuple(v.shape) for k, v in image.items()}
            raise ValueError(
                f"tiled inference needs every modality on one grid (same batch size, height and width), "
                f"got {shapes}"
            )


def accumulator_dtype(device: torch.device) -> torch.dtype:
    """float64 makes blending exact; MPS has no float64, so it accumulates in float32."""
    return torch.float32 if device.type == "mps" else torch.float64


def run_tiles(
    model_forward: Callable[..., Any],
    padded: Image,
    starts_y: Sequence[int],
    starts_x: Sequence[int],
    params: TiledInferenceParameters,
    sample_kwargs: Mapping[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.dtype]:
    """Run every tile of ``padded`` (``[B, ..., H, W]`` or a modality dict of them, tile starts relative
    to it) through the model.

    Returns the weighted sum of tile predictions ``[B, *out, H, W]`` (not yet divided by the
    weights) and the dtype the model predicted in.
    """
    crop_h, crop_w = params.crop  # type: ignore[misc]
    first = reference_tensor(padded)
    device = first.device
    acc_dtype = accumulator_dtype(device)
    weight = torch.from_numpy(np.outer(window_1d(crop_h, params.blend), window_1d(crop_w, params.blend))).to(
        device=device, dtype=acc_dtype
    )
    batch = first.shape[0]
    positions = [(b, y, x) for b in range(batch) for y in starts_y for x in starts_x]
    acc: torch.Tensor | None = None
    out_dtype = torch.float32
    for i in range(0, len(positions), params.batch_size):
        chunk = positions[i : i + params.batch_size]
        tiles = map_image(
            padded,
            lambda t, chunk=chunk: torch.stack(
                [t[b, ..., y : y + crop_h, x : x + crop_w] for b, y, x in chunk]
            ),
        )
        kwargs = {}
        if sample_kwargs:
            index = torch.tensor([b for b, _, _ in chunk], device=device)
            kwargs = {k: v.index_select(0, index.to(v.device)) for k, v in sample_kwargs.items()}
        with torch.no_grad():
            pred = _unwrap(model_forward(tiles, **kwargs))
        if pred.shape[0] != len(chunk) or tuple(pred.shape[-2:]) != (crop_h, crop_w):
            shown = map_image(tiles, lambda t: tuple(t.shape))  # type: ignore[arg-type,return-value]
            raise ValueError(
                f"tiled inference: the model mapped tiles {shown} to {tuple(pred.shape)}; "
                f"it must keep the batch size and the spatial size ({crop_h}, {crop_w})"
            )
        if acc is None:
            out_dtype = pred.dtype
            acc = torch.zeros((batch, *pred.shape[1:-2], *first.shape[-2:]), dtype=acc_dtype, device=device)
        weighted = pred.to(acc_dtype) * weight
        for (b, y, x), tile in zip(chunk, weighted):
            acc[b, ..., y : y + crop_h, x : x + crop_w] += tile
    assert acc is not None
    return acc, out_dtype


def tiled_inference(
    model_forward: Callable[..., Any],
    image: Image,
    params: TiledInferenceParameters | Mapping[str, Any] | None = None,
    *,
    sample_kwargs: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Predict ``image`` tile by tile and blend the tiles.

    Args:
        model_forward: maps a batch of tiles ``[n, ..., crop_h, crop_w]`` to ``[n, *out, crop_h, crop_w]``
            (a tensor or an object with a tensor ``.output``, like :class:`~geoft.models.ModelOutput`).
        image: ``[B, C, H, W]`` or ``[B, C, T, H, W]``, any ``H, W`` (smaller than a tile too), or a
            dict ``{modality: tensor}`` of such tensors on one grid (same ``B, H, W``; the model then
            receives ``{modality: tiles}``).
        params: :class:`TiledInferenceParameters` or a dict of its fields.
        sample_kwargs: per-sample tensors with leading dimension ``B`` (e.g. ``location_coords``);
            each tile batch receives the rows of the samples its tiles come from, as keyword arguments.

    Returns:
        ``[B, *out, H, W]`` in the model's output dtype.
    """
    p = TiledInferenceParameters.from_any(params)
    first = reference_tensor(image)
    if first.ndim < 3:
        raise ValueError(
            f"tiled inference needs [B, C, H, W] or [B, C, T, H, W], got shape {tuple(first.shape)}"
        )
    check_one_grid(image)
    for key, value in (sample_kwargs or {}).items():
        if value.shape[0] != first.shape[0]:
            raise ValueError(
                f"sample_kwargs[{key!r}] has {value.shape[0]} rows for a batch of {first.shape[0]}"
            )
    height, width = first.shape[-2:]
    (crop_h, crop_w), (stride_h, stride_w), (halo_h, halo_w) = p.crop, p.stride, p.halo  # type: ignore[misc]
    starts_y = tile_starts(height, crop_h, stride_h, halo_h)
    starts_x = tile_starts(width, crop_w, stride_w, halo_w)
    y0, y1 = starts_y[0], starts_y[-1] + crop_h
    x0, x1 = starts_x[0], starts_x[-1] + crop_w
    iy = torch.from_numpy(source_indices(y0, y1, height, p.padding)).to(first.device)
    ix = torch.from_numpy(source_indices(x0, x1, width, p.padding)).to(first.device)
    padded = map_image(image, lambda t: t.index_select(-2, iy).index_select(-1, ix))
    acc, out_dtype = run_tiles(
        model_forward, padded, [s - y0 for s in starts_y], [s - x0 for s in starts_x], p, sample_kwargs
    )
    wy = weight_sum_1d(starts_y, y0, y1 - y0, window_1d(crop_h, p.blend))
    wx = weight_sum_1d(starts_x, x0, x1 - x0, window_1d(crop_w, p.blend))
    weights = torch.from_numpy(np.outer(wy, wx)).to(device=acc.device, dtype=acc.dtype)
    blended = (acc / weights)[..., -y0 : -y0 + height, -x0 : -x0 + width]
    return blended.to(out_dtype)


def count_tiles(
    height: int, width: int, params: TiledInferenceParameters | Mapping[str, Any] | None = None
) -> int:
    """Number of tiles per image of size ``height x width`` (for progress bars and cost estimates)."""
    p = TiledInferenceParameters.from_any(params)
    (crop_h, crop_w), (stride_h, stride_w), (halo_h, halo_w) = p.crop, p.stride, p.halo  # type: ignore[misc]
    return len(tile_starts(height, crop_h, stride_h, halo_h)) * len(
        tile_starts(width, crop_w, stride_w, halo_w)
    )


__all__ = [
    "TiledInferenceParameters",
    "count_tiles",
    "source_indices",
    "tile_starts",
    "tiled_inference",
    "weight_sum_1d",
    "window_1d",
]
