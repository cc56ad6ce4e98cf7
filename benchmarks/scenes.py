"""Deterministic generated GeoTIFFs for the benchmarks: training chips and large scenes.

Values look like surface reflectance (int16, 0..10000, spatially smooth per band) so that
compression, reading and normalisation cost what they would on real HLS/Sentinel-2 chips. Files
are georeferenced (UTM 33N, 30 m pixels). The same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

CRS = "EPSG:32633"
PIXEL = 30.0
ORIGIN = (500_000.0, 5_000_000.0)


def _smooth_field(rng: np.random.Generator, bands: int, height: int, width: int) -> np.ndarray:
    """Band-wise smooth random field (coarse noise upsampled) plus fine noise, int16 in [0, 10000]."""
    coarse = rng.random((bands, height // 16 + 2, width // 16 + 2), dtype=np.float32)
    up = np.repeat(np.repeat(coarse, 16, axis=1), 16, axis=2)[:, :height, :width]
    fine = rng.random((bands, height, width), dtype=np.float32) * 0.2
    return ((up * 0.8 + fine) * 10_000).astype(np.int16)


def _profile(bands: int, height: int, width: int, dtype: str, col: int = 0, row: int = 0) -> dict:
    from rasterio.transform import Affine

    return {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": bands,
        "dtype": dtype,
        "crs": CRS,
        "transform": Affine(PIXEL, 0.0, ORIGIN[0] + col * PIXEL, 0.0, -PIXEL, ORIGIN[1] - row * PIXEL),
        "tiled": True,
        "blockxsize": 256 if width >= 256 else 16 * max(1, width // 16),
        "blockysize": 256 if height >= 256 else 16 * max(1, height // 16),
        "compress": "deflate",
    }


# Per-band statistics of the generated values (uniform mixture: mean 0.5, std ~0.238, x 10000).
MEAN = 5000.0
STD = 2380.0


@dataclass(frozen=True)
class ChipSet:
    """Where generated chips lie, laid out the way both tools' generic datamodules read them:
    ``root/{train,val}/images/chip_NNNNN_img.tif`` and ``root/{train,val}/labels/chip_NNNNN_mask.tif``.
    """

    root: Path
    img_glob: ClassVar[str] = "*_img.tif"
    label_glob: ClassVar[str] = "*_mask.tif"

    def images(self, split: str) -> Path:
        return self.root / split / "images"

    def labels(self, split: str) -> Path:
        return self.root / split / "labels"

    @staticmethod
    def means(bands: int) -> list[float]:
        return [MEAN] * bands

    @staticmethod
    def stds(bands: int) -> list[float]:
        return [STD] * bands


def make_chips(
    root: Path,
    n_train: int,
    n_val: int = 2,
    size: int = 224,
    bands: int = 6,
    num_classes: int = 2,
    seed: int = 0,
) -> ChipSet:
    """Write ``n_train`` + ``n_val`` image/mask GeoTIFF pairs under ``root/{train,val}/{images,labels}``.

    Reuses the files when ``root`` already holds a complete set made with the same arguments.
    """
    import rasterio

    root = Path(root)
    stamp = root / f".complete-{n_train}-{n_val}-{size}-{bands}-{num_classes}-{seed}"
    chipset = ChipSet(root)
    if stamp.exists():
        return chipset
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        chipset.images(split).mkdir(parents=True, exist_ok=True)
        chipset.labels(split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = _smooth_field(rng, bands, size, size)
            # Classes follow the first band so that the task is learnable, not noise.
            edges = np.quantile(image[0], np.linspace(0, 1, num_classes + 1)[1:-1])
            mask = np.digitize(image[0], edges).astype(np.uint8)
            col = i * size
            with rasterio.open(
                chipset.images(split) / f"chip_{i:05d}_img.tif",
                "w",
                **_profile(bands, size, size, "int16", col),
            ) as dst:
                dst.write(image)
            with rasterio.open(
                chipset.labels(split) / f"chip_{i:05d}_mask.tif", "w", **_profile(1, size, size, "uint8", col)
            ) as dst:
                dst.write(mask[None])
    stamp.touch()
    return chipset


SCENE_NODATA = -9999


def swath_valid(size: int, row: int, col: int, h: int, w: int, cut: float) -> np.ndarray:
    """Validity of a real-shaped scene: a swath whose two diagonal corners are nodata triangles,
    each of side ``cut * size`` (``cut=0.55`` leaves 30 % of the scene as nodata)."""
    ys, xs = np.mgrid[row : row + h, col : col + w]
    return (xs + ys >= cut * size) & (xs + ys < (2 - cut) * size)


def make_scene(
    path: Path, size: int, bands: int = 6, seed: int = 0, block: int = 1024, nodata_cut: float | None = None
) -> Path:
    """Write a ``size x size`` scene block by block (memory stays at one block); reuse an existing one.

    ``nodata_cut``: make it a swath with nodata corners (:func:`swath_valid`), nodata ``-9999``.
    """
    import rasterio
    from rasterio.windows import Window

    path = Path(path)
    stamp = path.with_suffix(path.suffix + f".complete-{size}-{bands}-{seed}-{nodata_cut}")
    if path.exists() and stamp.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    profile = _profile(bands, size, size, "int16")
    if nodata_cut is not None:
        profile["nodata"] = SCENE_NODATA
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                field = _smooth_field(rng, bands, h, w)
                if nodata_cut is not None:
                    field[:, ~swath_valid(size, row, col, h, w, nodata_cut)] = SCENE_NODATA
                dst.write(field, window=Window(col, row, w, h))
    stamp.touch()
    return path


def cut_into_quadrant_tiles(image: Path, label: Path, out: Path, tile: int) -> tuple[Path, Path]:
    """Cut a real chip and its label into ``tile``-px GeoTIFFs: ``train/`` (3 quadrants), ``test/`` (bottom right).

    Files are named ``tile_<row>_<col>_<image suffix>.tif`` / ``..._<label suffix>.tif`` after the last
    ``_``-part of the source stems (``S2Hand`` / ``LabelHand`` for Sen1Floods11). Returns the two folders.
    """
    import rasterio
    from rasterio.windows import Window

    for split in ("train", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
    with rasterio.open(image) as img, rasterio.open(label) as lab:
        n = img.width // tile
        for row in range(n):
            for col in range(n):
                split = "test" if row >= n // 2 and col >= n // 2 else "train"
                window = Window(col * tile, row * tile, tile, tile)
                for src, stem in ((img, image.stem), (lab, label.stem)):
                    profile = {**src.profile, "width": tile, "height": tile}
                    profile.update(transform=src.window_transform(window), tiled=False)
                    profile.pop("blockxsize", None)
                    profile.pop("blockysize", None)
                    name = f"tile_{row}_{col}_{stem.rsplit('_', 1)[-1]}.tif"
                    with rasterio.open(out / split / name, "w", **profile) as dst:
                        dst.write(src.read(window=window))
    return out / "train", out / "test"
