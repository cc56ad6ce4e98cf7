"""Bring samples of mixed sizes to one size: centre crop / pad to ``chip_size``, pad to a multiple.

Cropping moves the affine transform with the window, so georeferencing stays right.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from geoft.errors import ConfigError

Transform = tuple[float, float, float, float, float, float]


def as_size(size: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    pair = (
        (size, size) if isinstance(size, Integral) else tuple(size) if isinstance(size, list | tuple) else ()
    )
    if len(pair) != 2 or not all(
        isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in pair
    ):
        raise ConfigError(
            f"chip_size must be a positive integer or [height, width] of positive integers, not {size!r}."
        )
    return (int(pair[0]), int(pair[1]))


def target_shape(
    shape: tuple[int, int], chip_size: tuple[int, int] | None, pad_to_multiple: int | None
) -> tuple[int, int]:
    """Size a sample of ``shape`` gets after :func:`fit_to_size`."""
    h, w = chip_size if chip_size is not None else shape
    if pad_to_multiple:
        h = -(-h // pad_to_multiple) * pad_to_multiple
        w = -(-w // pad_to_multiple) * pad_to_multiple
    return (h, w)


def _shift(transform: Transform | None, row_off: int, col_off: int) -> Transform | None:
    if transform is None or (row_off == 0 and col_off == 0):
        return transform
    a, b, c, d, e, f = transform
    return (a, b, c + col_off * a + row_off * b, d, e, f + col_off * d + row_off * e)


def fit_to_size(
    arrays: list[tuple[np.ndarray, float]],
    transform: Transform | None,
    chip_size: tuple[int, int] | None,
    pad_to_multiple: int | None,
) -> tuple[list[np.ndarray], Transform | None]:
    """Centre-crop and pad (bottom/right) arrays ``[..., H, W]`` to the target size.

    ``arrays`` holds ``(array, fill value for padding)`` pairs that share one grid.
    """
    h, w = arrays[0][0].shape[-2:]
    th, tw = target_shape((h, w), chip_size, pad_to_multiple)
    if (th, tw) == (h, w):
        return [a for a, _ in arrays], transform
    row_off = max(h - th, 0) // 2
    col_off = max(w - tw, 0) // 2
    out = []
    for array, fill in arrays:
        a = array[..., row_off : row_off + min(h, th), col_off : col_off + min(w, tw)]
        ph, pw = th - a.shape[-2], tw - a.shape[-1]
        if ph or pw:
            pad = [(0, 0)] * (a.ndim - 2) + [(0, ph), (0, pw)]
            a = np.pad(a, pad, mode="constant", constant_values=fill)
        out.append(np.ascontiguousarray(a))
    return out, _shift(transform, row_off, col_off)
