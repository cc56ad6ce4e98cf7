"""The inputs of scene prediction: one GeoTIFF, one per date, or one (or one per date) per modality,
all read onto one output grid.

The output grid is the first file of the grid modality (the first modality unless named). Every other
file on that exact grid is read as it is; a file on another resolution, extent or CRS is read through a
GDAL warped view onto the grid (``resampling`` per modality: ``nearest`` for categorical data), so it is
still read in row strips, never whole. Parts of the grid a file does not cover are nodata for it. A file
that does not overlap the grid, or whose CRS cannot be related to the grid's, is a :class:`DataError`
naming both files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import torch
from rasterio.enums import MaskFlags
from rasterio.enums import Resampling as GdalResampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from geoft.errors import ConfigError, DataError
from geoft.io.scene_buffers import RowSource
from geoft.tasks.tiled_inference import Image

Normalise = Callable[[torch.Tensor], torch.Tensor] | tuple[Sequence[float], Sequence[float]] | None
Resampling = Literal["nearest", "bilinear"]


@dataclass(frozen=True)
class SceneInput:
    """One modality of a scene.

    Args:
        paths: one GeoTIFF, or one per date in time order (the modality is then ``[C, T, h, w]``).
        bands: 1-based band indexes read from every file (default: all).
        constant_scale: raw values are multiplied by this before normalising.
        normalise: ``(means, stds)`` per band read, or a function on ``[C, h, w]`` tensors.
        resampling: how a file off the output grid is resampled onto it.
    """

    paths: Sequence[str | Path]
    bands: Sequence[int] | None = None
    constant_scale: float = 1.0
    normalise: Normalise = None
    resampling: Resampling = "bilinear"


# one GeoTIFF, one per date (a time series), or {modality: SceneInput}
SceneSource = str | Path | Sequence[str | Path] | Mapping[str, SceneInput]


def as_scene_inputs(
    src: SceneSource, bands: Sequence[int] | None, constant_scale: float, normalise: Normalise
) -> dict[str, SceneInput]:
    """``src`` as ``{modality: SceneInput}``: one file or one per date become modality ``"image"``."""
    if isinstance(src, Mapping):
        if bands is not None or constant_scale != 1.0 or normalise is not None:
            raise ConfigError(
                "with one input per modality, give bands, constant_scale and normalise per modality",
                hint="set them in each SceneInput",
            )
        return dict(src)
    paths = [src] if isinstance(src, (str, Path)) else list(src)
    return {"image": SceneInput(paths, bands, constant_scale, normalise)}


def normaliser(
    normalise: Normalise, channels: int, what: str = "the scene"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function normalising ``[C, h, w]`` tensors from ``(means, stds)`` (checked) or as given."""
    if normalise is None:
        return lambda x: x
    if callable(normalise):
        return normalise
    means, stds = normalise
    if len(means) != channels or len(stds) != channels:
        raise ConfigError(
            f"normalise has {len(means)} means and {len(stds)} stds for {channels} input bands of {what}",
            hint="give one mean and one std per band read from the scene",
        )
    if any(s <= 0 for s in stds):
        raise ConfigError(f"normalise: every std must be > 0, got {list(stds)}")
    mean_t = torch.tensor(means, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.tensor(stds, dtype=torch.float32).view(-1, 1, 1)
    return lambda x: (x - mean_t.to(x.device)) / std_t.to(x.device)


def _open(path: Path, stack: ExitStack) -> Any:
    if not path.is_file():
        raise DataError(f"scene {path} does not exist")
    try:
        return stack.enter_context(rasterio.open(path))
    except rasterio.RasterioIOError as err:
        raise DataError(f"cannot read scene {path}: {err}") from err


def _on_grid(
    src: Any, path: Path, grid: Any, grid_path: Path, resampling: Resampling, stack: ExitStack
) -> Any:
    """``src`` itself when it lies on the grid, else a warped view of it onto the grid."""
    pixel = max(abs(grid.transform.a), abs(grid.transform.e))
    same = src.transform.almost_equals(grid.transform, precision=pixel * 1e-6)  # float noise is one grid
    if src.crs == grid.crs and same and src.shape == grid.shape:
        return src
    if src.crs is None or grid.crs is None:
        which = path if src.crs is None else grid_path
        raise DataError(
            f"{path} and {grid_path} are not on one grid, and {which} has no CRS to resample it with",
            hint="georeference the file, or give files of the same size and transform",
        )
    try:
        left, bottom, right, top = transform_bounds(src.crs, grid.crs, *src.bounds)
    except Exception as err:  # noqa: BLE001 - PROJ raises several kinds; all mean the same here
        raise DataError(
            f"cannot relate the CRS of {path} ({src.crs}) to that of {grid_path} ({grid.crs}): {err}"
        ) from err
    g = grid.bounds
    if left >= g.right or right <= g.left or bottom >= g.top or top <= g.bottom:
        raise DataError(
            f"{path} does not overlap the output grid of {grid_path}: it covers "
            f"{tuple(round(v, 6) for v in (left, bottom, right, top))}, the grid "
            f"{tuple(round(v, 6) for v in g)} (left, bottom, right, top in {grid.crs})",
            hint="give files of the same area (check the pairing of modalities and dates)",
        )
    alpha = src.nodata is None and MaskFlags.alpha not in src.mask_flag_enums[0]
    vrt = stack.enter_context(
        WarpedVRT(
            src,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=GdalResampling[resampling],
            add_alpha=alpha,
        )
    )
    return AlphaMasked(vrt, vrt.count) if alpha else vrt


class AlphaMasked:
    """A warped view whose validity is the alpha band GDAL added (its ``dataset_mask`` ignores it), so
    the parts of the grid the file does not cover are nodata."""

    def __init__(self, vrt: Any, alpha: int) -> None:
        self.vrt, self.alpha = vrt, alpha
        self.height, self.width = vrt.height, vrt.width

    def read(self, indexes: list[int], window: Any, out_dtype: str) -> np.ndarray:
        return self.vrt.read(indexes, window=window, out_dtype=out_dtype)

    def dataset_mask(self, window: Any) -> np.ndarray:
        return self.vrt.read(self.alpha, window=window)


@dataclass
class OpenScene:
    """The opened files: the grid's dataset, and per modality one reader per date on that grid."""

    grid: Any
    grid_path: Path
    readers: dict[str, list[Any]]
    indexes: dict[str, list[int]]


def open_scene(inputs: Mapping[str, SceneInput], grid_modality: str | None, stack: ExitStack) -> OpenScene:
    """Open every file, check bands and grids, and read the off-grid ones through warped views."""
    if not inputs:
        raise ConfigError("scene prediction needs at least one input file")
    grid_modality = grid_modality or next(iter(inputs))
    if grid_modality not in inputs:
        raise ConfigError(f"grid {grid_modality!r} is not one of the inputs {list(inputs)}")
    for m, spec in inputs.items():
        if not spec.paths:
            raise ConfigError(f"modality {m!r} has no input file")
    grid_path = Path(inputs[grid_modality].paths[0])
    grid = _open(grid_path, stack)
    readers: dict[str, list[Any]] = {}
    indexes: dict[str, list[int]] = {}
    for m, spec in inputs.items():
        readers[m] = []
        first_path: Path | None = None
        for raw_path in spec.paths:
            path = Path(raw_path)
            src = grid if path == grid_path else _open(path, stack)
            if first_path is None:
                first_path = path
                wanted = list(spec.bands) if spec.bands is not None else list(range(1, src.count + 1))
                bad = [b for b in wanted if not 1 <= b <= src.count]
                if bad:
                    raise ConfigError(f"bands {bad} are not in {path} (it has bands 1..{src.count})")
                indexes[m], count = wanted, src.count
            elif src.count != count:
                raise DataError(
                    f"{path} has {src.count} bands but {first_path} (an earlier date of {m!r}) has {count}",
                    hint="every date of a modality needs the same bands",
                )
            readers[m].append(_on_grid(src, path, grid, grid_path, spec.resampling, stack))
    return OpenScene(grid, grid_path, readers, indexes)


def preparer(
    spec: SceneInput, channels: int, no_data_replace: float | None, what: str
) -> Callable[[np.ndarray, np.ndarray], torch.Tensor]:
    """Raw rows ``[C, h, w]`` and their validity → scaled, nodata-filled, normalised tensor."""
    norm = normaliser(spec.normalise, channels, what)

    def prepare(raw: np.ndarray, valid: np.ndarray) -> torch.Tensor:
        image = torch.from_numpy(raw) * spec.constant_scale
        if no_data_replace is not None:
            image[:, ~torch.from_numpy(valid)] = no_data_replace
            image[~torch.isfinite(image)] = no_data_replace  # NaN inside a band the mask calls valid
        return norm(image)

    return prepare


class SceneRows:
    """The model input of source rows ``[lo, hi)`` over one column range: every modality and date.

    A modality of one file gives ``[C, h, W]``, of several dates ``[C, T, h, W]``; the result is the
    modality dict (``as_dict``) or the modalities' bands concatenated in order. A pixel is valid where
    any file has data (the others are filled with ``no_data_replace``).
    """

    def __init__(
        self,
        scene: OpenScene,
        prepares: Mapping[str, Callable[[np.ndarray, np.ndarray], torch.Tensor]],
        col_lo: int,
        col_hi: int,
        read_rows: int,
        as_dict: bool,
    ) -> None:
        self.as_dict = as_dict
        self.sources = {
            m: [RowSource(r, scene.indexes[m], col_lo, col_hi, prepares[m], read_rows) for r in readers]
            for m, readers in scene.readers.items()
        }

    def rows(self, lo: int, hi: int) -> tuple[Image, np.ndarray]:
        parts: dict[str, torch.Tensor] = {}
        valid: np.ndarray | None = None
        for m, dates in self.sources.items():
            read = [d.rows(lo, hi) for d in dates]
            parts[m] = read[0][0] if len(read) == 1 else torch.stack([image for image, _ in read], dim=1)
            for _, v in read:
                valid = v if valid is None else valid | v
        assert valid is not None
        if self.as_dict:
            return parts, valid
        return (next(iter(parts.values())) if len(parts) == 1 else torch.cat(list(parts.values()))), valid
