"""Embeddings: one vector per chip (or per tile of a scene) from any geoft backbone, and their files.

* :func:`pool_features` turns a backbone's output into ``[B, D]``: ``mean`` or ``max`` over tokens
  (ViTs, the CLS token left out) or over pixels (CNN feature maps), or the ``cls`` token.
* :class:`Embedder` runs an encoder (padding inputs to its patch size) and pools one of its outputs.
* :func:`write_embeddings` writes GeoParquet (``filename``, ``embedding`` list column, footprint polygon
  in the chips' CRS) or ``.npz`` (``embeddings``, ``filenames``, ``bounds``, ``crs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from geoft.errors import ConfigError, DataError
from geoft.models.padding import as_multiple, pad_to_multiple

POOLINGS = ("mean", "max", "cls")
FORMATS = ("parquet", "npz")


def pool_features(features: Tensor, pooling: str, has_cls: bool) -> Tensor:
    """``[B, L, D]`` tokens or ``[B, C, h, w]`` maps -> ``[B, D]``."""
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}", hint=f"use one of {', '.join(POOLINGS)}")
    if features.ndim == 4:
        if pooling == "cls":
            raise ConfigError(
                "pooling 'cls' needs a ViT backbone (token output); this one returns feature maps"
            )
        flat = features.flatten(2)
        return flat.mean(dim=2) if pooling == "mean" else flat.amax(dim=2)
    if features.ndim != 3:
        raise ConfigError(f"cannot pool backbone output of shape {tuple(features.shape)}")
    if pooling == "cls":
        if not has_cls:
            raise ConfigError("pooling 'cls' needs a backbone with a CLS token", hint="use mean or max")
        return features[:, 0]
    tokens = features[:, 1:] if has_cls else features
    return tokens.mean(dim=1) if pooling == "mean" else tokens.amax(dim=1)


def encoder_of(model: nn.Module) -> nn.Module:
    """The backbone of a geoft task or model (``task.model.encoder``; for detection the detector's
    backbone encoder), or ``model`` itself if it is one."""
    inner = getattr(model, "model", model)
    encoder = getattr(inner, "encoder", None)
    if isinstance(encoder, nn.Module):
        return encoder
    detector = getattr(getattr(inner, "torchvision_model", None), "backbone", None)  # ObjectDetectionModel
    if isinstance(getattr(detector, "encoder", None), nn.Module):
        return detector.encoder
    if isinstance(getattr(model, "out_channels", None), (list, tuple)):
        return model
    raise ConfigError(
        f"{type(model).__name__} has no encoder to take embeddings from",
        hint="use a task built by a geoft model factory (EncoderDecoderFactory) or a backbone",
    )


class Embedder(nn.Module):
    """One vector per image from ``encoder``'s output number ``layer`` (negative counts from the end)."""

    def __init__(
        self, encoder: nn.Module, pooling: str = "mean", layer: int = -1, padding: str = "reflect"
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r}", hint=f"use one of {', '.join(POOLINGS)}")
        self.encoder = encoder
        self.pooling = pooling
        self.layer = layer
        self.padding = padding
        patch = getattr(encoder, "patch_size", None)
        self.multiple = as_multiple(tuple(patch[-2:]) if isinstance(patch, (tuple, list)) else patch)
        self.has_cls = getattr(encoder, "output_format", "NCHW") == "tokens" and hasattr(encoder, "cls_token")

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        outputs = self.encoder(pad_to_multiple(x, self.multiple, self.padding))
        outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        if not -len(outputs) <= self.layer < len(outputs):
            raise ConfigError(
                f"layer {self.layer} is out of range: the backbone returns {len(outputs)} outputs"
            )
        return pool_features(outputs[self.layer], self.pooling, self.has_cls).float()


@dataclass
class EmbeddingTable:
    """Vectors with what names and places them: ``bounds`` are (minx, miny, maxx, maxy) in ``crs``."""

    vectors: list[np.ndarray] = field(default_factory=list)
    filenames: list[str] = field(default_factory=list)
    bounds: list[tuple[float, float, float, float] | None] = field(default_factory=list)
    crs: list[str | None] = field(default_factory=list)

    def add(
        self,
        vectors: Tensor,
        filenames: Sequence[Any],
        transforms: Sequence[Any],
        crs: Sequence[Any],
        size: tuple[int, int],
    ) -> None:
        for i, vector in enumerate(vectors.cpu().numpy()):
            self.vectors.append(vector.astype(np.float32))
            self.filenames.append(
                str(filenames[i]) if filenames[i] is not None else f"item_{len(self.filenames)}"
            )
            self.bounds.append(footprint_bounds(transforms[i], size) if transforms[i] is not None else None)
            self.crs.append(str(crs[i]) if crs[i] is not None else None)

    def __len__(self) -> int:
        return len(self.vectors)


def footprint_bounds(transform: Any, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Bounds of a ``size`` (height, width) raster with affine ``transform`` (an Affine or its 6 numbers)."""
    from affine import Affine

    t = transform if isinstance(transform, Affine) else Affine(*list(transform)[:6])
    height, width = size
    xs, ys = zip(*(t @ (c, r) for c, r in ((0, 0), (width, 0), (0, height), (width, height))))
    return (min(xs), min(ys), max(xs), max(ys))


def write_embeddings(table: EmbeddingTable, path: str | Path, output_format: str | None = None) -> Path:
    """Write ``table`` as GeoParquet (``.parquet``) or ``.npz`` (by ``output_format`` or the suffix)."""
    path = Path(path)
    fmt = output_format or ("npz" if path.suffix == ".npz" else "parquet")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown embeddings format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    if not len(table):
        raise DataError("no embeddings to write: the input held no chips")
    path.parent.mkdir(parents=True, exist_ok=True)
    vectors = np.stack(table.vectors)
    if fmt == "npz":
        bounds = np.array([b if b is not None else (np.nan,) * 4 for b in table.bounds], dtype=np.float64)
        crs = sorted({c for c in table.crs if c}) or [""]
        np.savez(
            path, embeddings=vectors, filenames=np.array(table.filenames), bounds=bounds, crs=np.array(crs)
        )
        return path
    import geopandas as gpd
    from shapely.geometry import box

    crs_set = {c for c in table.crs if c}
    if len(crs_set) > 1:
        raise DataError(
            f"the chips are in {len(crs_set)} CRSs ({', '.join(sorted(crs_set))}); one GeoParquet file holds one",
            hint="write .npz (bounds per chip, every CRS listed) or embed each CRS's chips separately",
        )
    if any(b is None for b in table.bounds):
        missing = table.filenames[[b is None for b in table.bounds].index(True)]
        raise DataError(
            f"{missing} is not georeferenced, so it has no footprint for GeoParquet", hint="write .npz"
        )
    frame = gpd.GeoDataFrame(
        {"filename": table.filenames, "embedding": [v.tolist() for v in vectors]},
        geometry=[box(*b) for b in table.bounds],  # type: ignore[misc]
        crs=next(iter(crs_set), None),
    )
    frame.to_parquet(path)
    return path


def read_embeddings(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Vectors ``[N, D]`` and file names of a file :func:`write_embeddings` wrote."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as data:
            return data["embeddings"], [str(n) for n in data["filenames"]]
    import geopandas as gpd

    frame = gpd.read_parquet(path)
    return np.stack([np.asarray(v, dtype=np.float32) for v in frame["embedding"]]), list(frame["filename"])


__all__ = [
    "Embedder",
    "EmbeddingTable",
    "FORMATS",
    "POOLINGS",
    "encoder_of",
    "footprint_bounds",
    "pool_features",
    "read_embeddings",
    "write_embeddings",
]
