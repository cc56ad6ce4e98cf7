"""What the Data page shows about a dataset folder: splits, chips, raster properties, classes, problems.

A dataset folder holds images and label masks as GeoTIFFs, either per split
(``train/``, ``val/``, ``test/`` each with an image and a label folder) or in one image and one label
folder (with optional ``splits/*.txt`` files listing names).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoft.datasets.pairing import GEOTIFF_EXTENSIONS as RASTER_SUFFIXES
from geoft.errors import DataError

IMAGE_DIRS = ("images", "image", "imgs", "img", "inputs")
LABEL_DIRS = ("labels", "label", "masks", "mask", "annotations", "targets")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
_LABEL_TOKENS = ("_label", "_labels", "_mask", "_masks", "_gt", "_annotation")
_IMAGE_TOKENS = ("_image", "_img", "_merged", "_input")


@dataclass
class SplitFiles:
    """Paired image/label files of one split."""

    name: str
    image_dir: Path
    label_dir: Path | None
    pairs: list[tuple[Path, Path | None]]


@dataclass
class DatasetSummary:
    """Everything the Data page displays."""

    root: Path
    splits: list[SplitFiles]
    size: tuple[int, int] | None = None
    dtype: str | None = None
    crs: str | None = None
    band_count: int | None = None
    band_names: list[str] = field(default_factory=list)
    nodata: float | None = None
    class_histogram: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def chip_count(self) -> int:
        return sum(len(s.pairs) for s in self.splits)

    @property
    def split_sizes(self) -> dict[str, int]:
        return {s.name: len(s.pairs) for s in self.splits}

    def all_pairs(self) -> list[tuple[str, Path, Path | None]]:
        return [(s.name, img, lbl) for s in self.splits for img, lbl in s.pairs]


def _rasters(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in RASTER_SUFFIXES and p.is_file())


def _key(path: Path, tokens: tuple[str, ...]) -> str:
    stem = path.name
    for suffix in RASTER_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    low = stem.lower()
    for token in tokens:
        if low.endswith(token):
            return stem[: -len(token)]
    return stem


def _find_dir(parent: Path, names: tuple[str, ...]) -> Path | None:
    for child in sorted(parent.iterdir()):
        if child.is_dir() and child.name.lower() in names:
            return child
    return None


def _pair(
    image_dir: Path, label_dir: Path | None, problems: list[str], split: str
) -> list[tuple[Path, Path | None]]:
    images = {_key(p, _IMAGE_TOKENS): p for p in _rasters(image_dir)}
    if label_dir is None:
        return [(p, None) for p in images.values()]
    labels = {_key(p, _LABEL_TOKENS): p for p in _rasters(label_dir)}
    missing_labels = sorted(set(images) - set(labels))
    orphans = sorted(set(labels) - set(images))
    if missing_labels:
        problems.append(
            f"{split}: {len(missing_labels)} image(s) have no label in {label_dir.name}/, e.g. {missing_labels[0]!r}"
        )
    if orphans:
        problems.append(
            f"{split}: {len(orphans)} label(s) have no image in {image_dir.name}/, e.g. {orphans[0]!r}"
        )
    return [(images[k], labels[k]) for k in sorted(images) if k in labels]


def find_splits(root: Path) -> tuple[list[SplitFiles], list[str]]:
    """Detect the layout of a dataset folder; problems are returned, not raised."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder", hint="choose a dataset folder")
    problems: list[str] = []
    splits: list[SplitFiles] = []
    for child in sorted(root.iterdir()):
        split = SPLIT_NAMES.get(child.name.lower())
        if split and child.is_dir():
            image_dir = _find_dir(child, IMAGE_DIRS)
            if image_dir is None:
                problems.append(
                    f"{child.name}/ has no image folder (expected one of {', '.join(IMAGE_DIRS)})"
                )
                continue
            label_dir = _find_dir(child, LABEL_DIRS)
            splits.append(
                SplitFiles(split, image_dir, label_dir, _pair(image_dir, label_dir, problems, split))
            )
    if splits:
        return splits, problems
    image_dir = _find_dir(root, IMAGE_DIRS)
    if image_dir is None:
        raise DataError(
            f"{root} has neither split folders (train/, val/, test/) nor an image folder",
            hint=f"put images in one of {', '.join(IMAGE_DIRS)} and masks in one of {', '.join(LABEL_DIRS)}",
        )
    label_dir = _find_dir(root, LABEL_DIRS)
    pairs = _pair(image_dir, label_dir, problems, "all")
    split_dir = root / "splits"
    if split_dir.is_dir() and any(split_dir.glob("*.txt")):
        by_key = {_key(img, _IMAGE_TOKENS): (img, lbl) for img, lbl in pairs}
        for txt in sorted(split_dir.glob("*.txt")):
            names = [ln.strip() for ln in txt.read_text().splitlines() if ln.strip()]
            chosen = [
                by_key[_key(Path(n), _IMAGE_TOKENS)] for n in names if _key(Path(n), _IMAGE_TOKENS) in by_key
            ]
            if len(chosen) < len(names):
                problems.append(f"splits/{txt.name}: {len(names) - len(chosen)} name(s) match no image")
            splits.append(
                SplitFiles(SPLIT_NAMES.get(txt.stem.lower(), txt.stem), image_dir, label_dir, chosen)
            )
        return splits, problems
    return [SplitFiles("all", image_dir, label_dir, pairs)], problems


def summarize(root: Path, max_label_reads: int = 64, seed: int = 0) -> DatasetSummary:
    """Scan a dataset folder: layout, raster properties of the chips, class histogram, problems."""
    import rasterio
    from rasterio.errors import RasterioIOError

    splits, problems = find_splits(root)
    summary = DatasetSummary(root=Path(root), splits=splits, problems=problems)
    pairs = summary.all_pairs()
    if not pairs:
        summary.problems.append("no image/label pairs found")
        return summary
    shapes: Counter[tuple[int, int, int]] = Counter()
    dtypes: Counter[str] = Counter()
    for _split, img, _lbl in pairs:
        try:
            with rasterio.open(img) as src:
                shapes[(src.count, src.height, src.width)] += 1
                dtypes[src.dtypes[0]] += 1
                if summary.size is None:
                    summary.size = (src.height, src.width)
                    summary.dtype = src.dtypes[0]
                    summary.crs = src.crs.to_string() if src.crs else None
                    summary.band_count = src.count
                    summary.band_names = [d or f"band {i + 1}" for i, d in enumerate(src.descriptions)]
                    summary.nodata = src.nodata
        except RasterioIOError as err:
            summary.problems.append(f"cannot read image {img.name}: {err}")
    if len(shapes) > 1:
        summary.problems.append(
            "images differ in band count or size: "
            + ", ".join(f"{c}×{h}×{w} ({n} files)" for (c, h, w), n in shapes.most_common(4))
        )
    if len(dtypes) > 1:
        summary.warnings.append(f"images use several data types: {dict(dtypes)}")
    if summary.crs is None:
        summary.warnings.append(
            "the images have no CRS: training works, but predictions cannot be placed on a map"
        )
    labelled = [lbl for _s, _i, lbl in pairs if lbl is not None]
    if not labelled:
        summary.problems.append("no label masks found: training needs a mask per image")
    rng = random.Random(seed)
    sample = labelled if len(labelled) <= max_label_reads else rng.sample(labelled, max_label_reads)
    hist: Counter[int] = Counter()
    for lbl in sample:
        try:
            with rasterio.open(lbl) as src:
                values, counts = np.unique(src.read(1), return_counts=True)
                if src.count != 1:
                    summary.problems.append(f"label {lbl.name} has {src.count} bands; a mask needs one")
            hist.update({int(v): int(c) for v, c in zip(values, counts)})
        except RasterioIOError as err:
            summary.problems.append(f"cannot read label {lbl.name}: {err}")
    summary.class_histogram = dict(sorted(hist.items()))
    if labelled and len(sample) < len(labelled):
        summary.warnings.append(f"class histogram from a sample of {len(sample)} of {len(labelled)} masks")
    return summary


# -- class names and colours, shared by every page ---------------------------------------------
def _meta_path(home: Path, root: Path) -> Path:
    import hashlib

    digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return Path(home) / "datasets" / f"{digest}.json"


def load_dataset_meta(home: Path, root: Path) -> dict[str, Any]:
    """Saved class names/colours, band names and statistics for a dataset ({} when none)."""
    path = _meta_path(home, root)
    if path.is_file():
        return json.loads(path.read_text())
    sidecar = Path(root) / "dataset.json"  # written by dataset producers such as the demo generator
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        keys = ("class_names", "class_colors", "bands")
        meta = {k: data[k] for k in keys if k in data}
        if "means" in data and "stds" in data:
            meta["statistics"] = {"means": data["means"], "stds": data["stds"]}
        return meta
    return {}


def save_dataset_meta(home: Path, root: Path, meta: dict[str, Any]) -> None:
    path = _meta_path(home, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**meta, "root": str(Path(root).resolve())}, indent=1))


def dataset_statistics(summary: DatasetSummary, max_samples: int = 500) -> dict[str, list[float]]:
    """Per-band mean and standard deviation of the training images, read the way training reads them
    (geoft's dataset reader and :func:`geoft.datasets.statistics.compute_statistics`; nodata skipped)."""
    from geoft.datasets.segmentation import GenericNonGeoSegmentationDataset
    from geoft.datasets.statistics import compute_statistics

    paths = datamodule_paths(summary)
    dataset = GenericNonGeoSegmentationDataset(
        data_root=paths["train_data_root"],
        num_classes=max(2, len(summary.class_histogram)),
        image_grep=paths["img_grep"],
        split=paths.get("train_split"),
        with_labels=False,
        name="train",
    )
    stats = compute_statistics(dataset, max_samples=max_samples)
    return {
        "means": [round(float(m), 6) for m in stats.means],
        "stds": [round(float(v), 6) for v in stats.stds],
    }


def _common_suffix(paths: list[Path], tokens: tuple[str, ...]) -> str:
    suffixes = {p.name[len(_key(p, tokens)) :] for p in paths}
    if len(suffixes) != 1:
        raise DataError(
            f"files in {paths[0].parent} end in different ways ({', '.join(sorted(suffixes)[:4])})",
            hint="name all images alike (e.g. NAME.tif) and all masks alike (e.g. NAME_mask.tif)",
        )
    return suffixes.pop()


def datamodule_paths(summary: DatasetSummary) -> dict[str, Any]:
    """Data-root, label-root, split-file and grep arguments of the generic datamodule for this layout."""
    by_name = {s.name: s for s in summary.splits}
    if "train" not in by_name and "all" not in by_name:
        raise DataError(
            f"{summary.root} has no training split", hint="add a train/ folder or splits/train.txt"
        )
    images = [img for s in summary.splits for img, _ in s.pairs]
    labels = [lbl for s in summary.splits for _, lbl in s.pairs if lbl is not None]
    if not images or not labels:
        raise DataError(f"{summary.root} has no image/label pairs to train on")
    args: dict[str, Any] = {
        "img_grep": "*" + _common_suffix(images, _IMAGE_TOKENS),
        "label_grep": "*" + _common_suffix(labels, _LABEL_TOKENS),
    }
    split_dir = summary.root / "splits"
    for split in ("train", "val", "test"):
        s = by_name.get(split) or (by_name.get("all") if split in ("train", "val") else None)
        if s is None:
            continue
        args[f"{split}_data_root"] = str(s.image_dir)
        if s.label_dir is not None:
            args[f"{split}_label_data_root"] = str(s.label_dir)
        split_file = split_dir / f"{split}.txt"
        if s.name == split and split_file.is_file() and s.image_dir.parent == summary.root:
            args[f"{split}_split"] = str(split_file)
    return args


def config_chips(data_args: dict[str, Any]) -> list[tuple[str, Path, Path | None]]:
    """``(split, image, label)`` of the test and val splits named in a datamodule config."""
    from geoft.datasets.pairing import file_key

    out: list[tuple[str, Path, Path | None]] = []
    img_grep = str(data_args.get("img_grep") or "*")
    label_grep = str(data_args.get("label_grep") or "*")
    for split in ("test", "val", "train"):
        root = data_args.get(f"{split}_data_root")
        if not root or not Path(root).is_dir():
            continue
        label_root = Path(data_args.get(f"{split}_label_data_root") or root)
        images = {file_key(p.name, img_grep): p for p in sorted(Path(root).glob(img_grep))}
        labels = {file_key(p.name, label_grep): p for p in sorted(label_root.glob(label_grep))}
        if label_root == Path(root) and label_grep != img_grep:
            images = {k: v for k, v in images.items() if v not in labels.values()}
        out += [(split, img, labels.get(k)) for k, img in images.items()]
    return out
