"""A small SYNTHETIC, georeferenced, multispectral segmentation dataset for demos and tests.

Six HLS/Prithvi bands (BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2; reflectance x 10000, int16) on a
30 m UTM grid (EPSG:32633), five classes with coherent shapes: smooth noise fields for water, bare
soil and clouds, rectangles for built-up areas, and per-class spectra with texture and noise.
It is made up: use it to try geoft, never to judge a model on real imagery.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine

from geoft.errors import DataError

DEMO_BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
DEMO_CLASSES = ["water", "vegetation", "bare soil", "built-up", "cloud"]
DEMO_COLORS = ["#2b6cb0", "#2f855a", "#c69c6d", "#e53e3e", "#e2e8f0"]
# mean reflectance x 10000 per class and band (typical HLS values)
DEMO_SPECTRA = np.array(
    [
        [700, 600, 400, 250, 120, 80],
        [350, 650, 400, 3200, 1700, 800],
        [1100, 1400, 1700, 2300, 3000, 2600],
        [1400, 1450, 1550, 1900, 2100, 1900],
        [5200, 5300, 5500, 5800, 4200, 2900],
    ],
    dtype=np.float32,
)
DEMO_CRS = "EPSG:32633"
_CRS = rasterio.crs.CRS.from_string(DEMO_CRS)
PIXEL_SIZE = 30.0
ORIGIN = (500_000.0, 5_000_000.0)
GRID_COLUMNS = 8


def _origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


@dataclass
class DemoDatasetInfo:
    """Where the demo dataset is and what it holds."""

    root: Path
    image_dirs: dict[str, Path]
    label_dirs: dict[str, Path]
    counts: dict[str, int]
    class_names: list[str]
    class_colors: list[str]
    bands: list[str]
    size: int
    crs: str
    pixel_size: float
    means: list[float]
    stds: list[float]
    img_grep: str = "*.tif"
    label_grep: str = "*.tif"
    synthetic: bool = True
    class_pixel_counts: dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def datamodule_init_args(self) -> dict[str, Any]:
        """``init_args`` for :class:`~geoft.datamodules.GenericNonGeoSegmentationDataModule`."""
        args: dict[str, Any] = {
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "img_grep": self.img_grep,
            "label_grep": self.label_grep,
            "dataset_bands": list(self.bands),
            "means": [round(m, 3) for m in self.means],
            "stds": [round(s, 3) for s in self.stds],
        }
        for split in self.image_dirs:
            args[f"{split}_data_root"] = str(self.image_dirs[split])
            args[f"{split}_label_data_root"] = str(self.label_dirs[split])
        if "test" in self.image_dirs:
            args["predict_data_root"] = str(self.image_dirs["test"])
        return args

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out = json.loads(json.dumps(out, default=str))
        out["num_classes"] = self.num_classes
        out["datamodule"] = {
            "class_path": "geoft.datamodules.GenericNonGeoSegmentationDataModule",
            "init_args": self.datamodule_init_args(),
        }
        return out


def _smooth_field(rng: np.random.Generator, size: int, scale: int) -> np.ndarray:
    """Spatially coherent noise (zero mean, unit std) with features about ``scale`` pixels wide."""
    cells = max(2, math.ceil(size / scale) + 1)
    coarse = torch.from_numpy(rng.standard_normal((1, 1, cells, cells)).astype(np.float32))
    up = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0, 0].numpy()
    return (up - up.mean()) / (up.std() + 1e-6)


def _label_map(rng: np.random.Generator, size: int) -> np.ndarray:
    label = np.full((size, size), 1, dtype=np.uint8)  # vegetation everywhere first
    label[_smooth_field(rng, size, 16) > rng.uniform(0.2, 0.9)] = 2  # bare soil
    water = _smooth_field(rng, size, 24) > rng.uniform(0.5, 1.6)
    for _ in range(rng.integers(0, 4)):  # built-up blocks on land
        h, w = rng.integers(size // 10 + 2, size // 3 + 2, size=2)
        r, c = rng.integers(0, size - h), rng.integers(0, size - w)
        label[r : r + h, c : c + w] = 3
    label[water] = 0
    if rng.random() < 0.35:
        label[_smooth_field(rng, size, 12) > rng.uniform(0.8, 1.6)] = 4  # cloud on top
    return label


def _image(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    size = label.shape[0]
    spectra = DEMO_SPECTRA[label].transpose(2, 0, 1)  # [6, H, W]
    texture = 1.0 + 0.08 * _smooth_field(rng, size, 6)[None]
    illumination = rng.uniform(0.9, 1.1)
    noise = rng.standard_normal(spectra.shape).astype(np.float32) * (0.06 * spectra + 60)
    image = spectra * texture * illumination + noise
    return np.clip(image, 0, 10000).astype(np.int16)


def _write(path: Path, data: np.ndarray, transform: Any, nodata: float | None = None) -> None:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[-1],
        height=data.shape[-2],
        count=data.shape[0],
        dtype=str(data.dtype),
        crs=_CRS,
        transform=transform,
        nodata=nodata,
        compress="deflate",
    ) as dst:
        dst.write(data)


def _readme(info: DemoDatasetInfo) -> str:
    classes = "\n".join(
        f"| {i} | {n} | {c} |" for i, (n, c) in enumerate(zip(info.class_names, info.class_colors))
    )
    return f"""# geoft demo dataset (SYNTHETIC)

**This data is synthetic.** It was generated by `geoft demo-data` to try the library, the CLI and
the app without downloading anything. It imitates a Harmonized Landsat Sentinel-2 (HLS) scene but
shows no real place: do not use it to judge a model on real imagery.

* bands: {", ".join(info.bands)} (surface reflectance x 10000, int16)
* grid: {info.size}x{info.size} px chips, {info.pixel_size:g} m pixels, {info.crs}
* splits: {", ".join(f"{k} {v}" for k, v in info.counts.items())} chips (`<split>/images`, `<split>/labels`)

| value | class | colour |
|---|---|---|
{classes}

Shapes come from smooth random noise fields (water, bare soil, cloud) and rectangles (built-up);
pixel values are typical per-class spectra with texture, illumination change and noise.
`dataset.json` holds the same facts and ready-to-use datamodule arguments.
"""


def generate_demo_dataset(
    out_dir: str | Path,
    n_train: int = 64,
    n_val: int = 16,
    n_test: int = 16,
    size: int = 64,
    seed: int = 0,
    overwrite: bool = False,
) -> DemoDatasetInfo:
    """Write the synthetic demo dataset to ``out_dir`` and describe it.

    ``out_dir`` must not exist or be empty, unless ``overwrite`` (which replaces the demo folders
    only after checking ``out_dir`` holds a previous demo dataset).
    """
    out = Path(out_dir)
    if size < 16:
        raise DataError(f"size must be at least 16 pixels, not {size}.")
    if min(n_train, n_val, n_test) < 0 or n_train < 1:
        raise DataError("n_train must be at least 1 and n_val/n_test non-negative.")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is a file; choose a folder for the demo dataset.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise DataError(
                f"{out} is not empty; the demo dataset is written only to a new or empty folder.",
                hint="choose another folder, or pass overwrite=True to replace a previous demo dataset.",
            )
        if not (out / "dataset.json").is_file():
            raise DataError(
                f"{out} does not hold a previous demo dataset (no dataset.json); not overwriting it."
            )
        for split in ("train", "val", "test"):
            shutil.rmtree(out / split, ignore_errors=True)
    rng = np.random.default_rng(seed)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    image_dirs, label_dirs = {}, {}
    row0 = 0
    sums = np.zeros(len(DEMO_BANDS))
    sqs = np.zeros(len(DEMO_BANDS))
    npix = 0
    class_pixels = np.zeros(len(DEMO_CLASSES), dtype=np.int64)
    for split, n in counts.items():
        if n == 0:
            continue
        image_dirs[split] = out / split / "images"
        label_dirs[split] = out / split / "labels"
        image_dirs[split].mkdir(parents=True, exist_ok=True)
        label_dirs[split].mkdir(parents=True, exist_ok=True)
        for i in range(n):
            row, col = row0 + i // GRID_COLUMNS, i % GRID_COLUMNS
            transform = _origin(
                ORIGIN[0] + col * size * PIXEL_SIZE,
                ORIGIN[1] - row * size * PIXEL_SIZE,
                PIXEL_SIZE,
                PIXEL_SIZE,
            )
            label = _label_map(rng, size)
            image = _image(rng, label)
            name = f"{split}_{i:04d}.tif"
            _write(image_dirs[split] / name, image, transform)
            _write(label_dirs[split] / name, label[None], transform)
            class_pixels += np.bincount(label.ravel(), minlength=len(DEMO_CLASSES))
            if split == "train":
                flat = image.reshape(len(DEMO_BANDS), -1).astype(np.float64)
                sums += flat.sum(1)
                sqs += (flat**2).sum(1)
                npix += flat.shape[1]
        row0 += math.ceil(n / GRID_COLUMNS) + 1
    means = sums / npix
    stds = np.sqrt(np.maximum(sqs / npix - means**2, 0))
    info = DemoDatasetInfo(
        root=out,
        image_dirs=image_dirs,
        label_dirs=label_dirs,
        counts={k: v for k, v in counts.items() if v},
        class_names=list(DEMO_CLASSES),
        class_colors=list(DEMO_COLORS),
        bands=list(DEMO_BANDS),
        size=size,
        crs=DEMO_CRS,
        pixel_size=PIXEL_SIZE,
        means=means.tolist(),
        stds=stds.tolist(),
        class_pixel_counts={n: int(c) for n, c in zip(DEMO_CLASSES, class_pixels)},
    )
    (out / "dataset.json").write_text(json.dumps(info.to_dict(), indent=2))
    (out / "README.md").write_text(_readme(info))
    return info


def write_class_fraction_labels(root: str | Path, class_name: str = "vegetation") -> dict[str, Path]:
    """Write ``<split>/<class>_fraction.csv`` (``filename,fraction`` of the chip's pixels in ``class_name``)
    for a demo dataset: an image-level regression target with a known truth. Returns split -> file."""
    info = load_demo_info(root)
    if class_name not in info.class_names:
        raise DataError(f"{class_name!r} is not a demo class; the classes are {', '.join(info.class_names)}.")
    index = info.class_names.index(class_name)
    written = {}
    for split, label_dir in info.label_dirs.items():
        rows = ["filename,fraction"]
        for path in sorted(Path(label_dir).glob("*.tif")):
            with rasterio.open(path) as src:
                fraction = float((src.read(1) == index).mean())
            rows.append(f"{path.name},{fraction:.6f}")
        out = Path(root) / split / f"{class_name.replace(' ', '_')}_fraction.csv"
        out.write_text("\n".join(rows) + "\n")
        written[split] = out
    return written


def load_demo_info(root: str | Path) -> DemoDatasetInfo:
    """Read ``dataset.json`` of a demo dataset written by :func:`generate_demo_dataset`."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        raise DataError(
            f"{root} holds no demo dataset (no dataset.json).", hint="run `geoft demo-data OUT_DIR`."
        )
    data = json.loads(path.read_text())
    fields = {k: data[k] for k in DemoDatasetInfo.__dataclass_fields__ if k in data}
    fields["root"] = Path(fields["root"])
    fields["image_dirs"] = {k: Path(v) for k, v in fields["image_dirs"].items()}
    fields["label_dirs"] = {k: Path(v) for k, v in fields["label_dirs"].items()}
    return DemoDatasetInfo(**fields)
