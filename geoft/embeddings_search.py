"""Similarity search over embeddings: the k chips nearest to a query by cosine similarity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoft.errors import ConfigError


@dataclass(frozen=True)
class Neighbour:
    index: int
    similarity: float


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def nearest_neighbours(embeddings: np.ndarray, query: int | np.ndarray, k: int = 5) -> list[Neighbour]:
    """The ``k`` rows of ``embeddings`` ``[N, D]`` most similar to ``query`` (cosine), best first.

    ``query`` is a row index (that row itself is left out) or a vector ``[D]``. Ties keep row order.
    """
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2 or not len(vectors):
        raise ConfigError(f"embeddings must be a non-empty [N, D] array, got shape {vectors.shape}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if isinstance(query, (int, np.integer)):
        if not 0 <= int(query) < len(vectors):
            raise ConfigError(f"query index {query} is outside 0..{len(vectors) - 1}")
        target, skip = vectors[int(query)], int(query)
    else:
        target, skip = np.asarray(query, dtype=np.float64), None
        if target.shape != (vectors.shape[1],):
            raise ConfigError(
                f"query vector has shape {target.shape}, the embeddings have {vectors.shape[1]} dims"
            )
    similarity = _unit(vectors) @ _unit(target)
    if skip is not None:
        similarity[skip] = -np.inf
    order = np.argsort(-similarity, kind="stable")
    kept = [i for i in order if np.isfinite(similarity[i])][:k]
    return [Neighbour(int(i), float(similarity[i])) for i in kept]


__all__ = ["Neighbour", "nearest_neighbours"]
