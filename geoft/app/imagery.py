"""Turn rasters into pictures: percentile-stretched RGB composites, class-coloured masks, PNG data URLs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np

from geoft.errors import ConfigError
from geoft.io.geotiff import default_colors, parse_color

__all__ = [
    "class_colors",
    "colorize",
    "default_colors",
    "hex_color",
    "parse_hex",
    "percentile_stretch",
    "png_data_url",
]


# Conventional map colours, by a word in the class name (first match wins; order matters:
# "cloud shadow" is a shadow, "not water" / "non-vegetation" / "background" are neutral).
_CONVENTIONAL: tuple[tuple[tuple[str, ...], tuple[int, int, int]], ...] = (
    (("not ", "non-", "non ", "no ", "background", "other", "unknown", "nodata", "no data"), (190, 190, 190)),
    (("shadow",), (70, 70, 70)),
    (("cloud", "snow", "ice"), (255, 255, 255)),
    (("water", "flood", "river", "lake", "sea", "ocean"), (30, 110, 220)),
    (("forest", "tree", "wood"), (20, 110, 40)),
    (("vegetation", "grass", "crop", "field", "meadow", "shrub", "agri"), (70, 180, 60)),
    (("building", "urban", "road", "built", "settlement"), (200, 40, 40)),
    (("bare", "soil", "sand", "desert", "rock"), (190, 150, 90)),
    (("wetland", "marsh"), (100, 170, 170)),
)


def class_colors(names: Sequence[str]) -> list[tuple[int, int, int]]:
    """A colour per class: the conventional one where the name says what the class is
    (water blue, vegetation green, cloud white...), else a distinct palette colour."""
    taken = [v for _k, v in _CONVENTIONAL] + [(0, 0, 0)]  # black reads as nodata on a map
    palette = iter(c for c in default_colors(len(names) + 16) if c not in taken)
    out = []
    for name in names:
        low = f"{name.lower().strip()} "
        match = next(
            (
                color
                for words, color in _CONVENTIONAL
                if any(low.startswith(w) or f" {w}" in f" {low}" for w in words)
            ),
            None,
        )
        out.append(match or next(palette))
    return out


def hex_color(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb[:3]))


def parse_hex(color: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` -> ``(r, g, b)``; anything else is a ConfigError."""
    if not isinstance(color, str):
        raise ConfigError(f"colour {color!r} is not '#rrggbb'")
    return parse_color(color)


def percentile_stretch(
    image: np.ndarray,
    bands: Sequence[int],
    low: float = 2.0,
    high: float = 98.0,
    nodata: float | None = None,
) -> np.ndarray:
    """``[C, H, W]`` raster -> ``[H, W, 3]`` uint8 RGB, each band stretched between its percentiles.

    Nodata and non-finite pixels are ignored for the percentiles and drawn black.
    """
    if image.ndim != 3:
        raise ConfigError(f"expected an image [C, H, W], got shape {tuple(image.shape)}")
    if len(bands) not in (1, 3):
        raise ConfigError(f"choose 1 or 3 bands for display, got {list(bands)}")
    bad = [b for b in bands if not 0 <= b < image.shape[0]]
    if bad:
        raise ConfigError(f"band index {bad} out of range: the image has {image.shape[0]} bands (0-based)")
    out = np.zeros((*image.shape[1:], 3), dtype=np.uint8)
    channels = [bands[0]] * 3 if len(bands) == 1 else list(bands)
    for i, b in enumerate(channels):
        band = image[b].astype(np.float64)
        valid = np.isfinite(band)
        if nodata is not None:
            valid &= band != nodata
        if not valid.any():
            continue
        lo, hi = np.percentile(band[valid], [low, high])
        scale = hi - lo if hi > lo else 1.0
        scaled = np.clip((band - lo) / scale, 0.0, 1.0) * 255.0
        out[..., i] = np.where(valid, scaled, 0).astype(np.uint8)
    return out


def colorize(
    mask: np.ndarray, colors: Sequence[Sequence[int]], transparent: Sequence[int] = (), alpha: int = 255
) -> np.ndarray:
    """``[H, W]`` class indices -> ``[H, W, 4]`` RGBA; unknown or listed values are transparent."""
    if mask.ndim != 2:
        raise ConfigError(f"expected a class mask [H, W], got shape {tuple(mask.shape)}")
    lut = np.zeros((len(colors) + 1, 4), dtype=np.uint8)  # the last row: transparent
    for i, c in enumerate(colors):
        lut[i, :3] = c[:3]
        lut[i, 3] = alpha
    idx = mask.astype(np.int64)
    valid = (idx >= 0) & (idx < len(colors))
    for t in transparent:
        valid &= idx != t
    return lut[np.where(valid, idx, len(colors))]


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode ``[H, W, 3|4]`` uint8 as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG")
    return buf.getvalue()


def png_data_url(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` for embedding (no request leaves the page)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")
