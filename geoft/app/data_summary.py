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

from geoft.app.dataset_layout import Pairing, SplitFiles, find_splits
from geoft.errors import ConfigError, DataError
from geoft.task_kinds import TaskKind


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
    pairing: Pairing = field(default_factory=Pairing)

    @property
    def chip_count(self) -> int:
        return sum(len(s.pairs) for s in self.splits)

    @property
    def split_sizes(self) -> dict[str, int]:
        return {s.name: len(s.pairs) for s in self.splits}

    def all_pairs(self) -> list[tuple[str, Path, Path | None]]:
        return [(s.name, img, lbl) for s in self.splits for img, lbl in s.pairs]


def _unreadable(path: Path, what: str, err: Exception) -> str:
    reason = str(err).split("\n")[0]
    if "not recognized as" in reason or "not a supported" in reason or "TIFFReadDirectory" in reason:
        reason = "not a readable raster (corrupt, truncated or another format)"
    return f"{what} {path.name} cannot be read: {reason}. It is left out here; remove or replace it before training."


def _readable_pairs(splits: list[SplitFiles], problems: list[str]) -> None:
    """Drop pairs whose image or label cannot be opened (reported once each, never counted as chips)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    for split in splits:
        kept = []
        for img, lbl in split.pairs:
            ok = True
            for path, what in ((img, "image"), (lbl, "label")):
                if path is None:
                    continue
                try:
                    with rasterio.open(path):
                        pass
                except RasterioIOError as err:
                    problems.append(_unreadable(path, what, err))
                    ok = False
            if ok:
                kept.append((img, lbl))
        split.pairs = kept


def band_names_of(src: Any) -> list[str]:
    """The band descriptions of an open raster (``band i`` where a band has none)."""
    return [d or f"band {i + 1}" for i, d in enumerate(src.descriptions)]


def image_band_names(path: Path) -> list[str]:
    """The band names of an image file (see :func:`band_names_of`)."""
    import rasterio

    with rasterio.open(path) as src:
        return band_names_of(src)


def summarize(
    root: Path,
    max_label_reads: int = 64,
    seed: int = 0,
    image_suffix: str | None = None,
    label_suffix: str | None = None,
) -> DatasetSummary:
    """Scan a dataset folder: layout, raster properties of the chips, class histogram, problems.

    ``image_suffix``/``label_suffix`` state how images and labels are named (``None``: detected).
    """
    import rasterio

    splits, problems, pairing = find_splits(root, image_suffix, label_suffix)
    _readable_pairs(splits, problems)
    summary = DatasetSummary(root=Path(root), splits=splits, problems=problems, pairing=pairing)
    pairs = summary.all_pairs()
    if not pairs:
        summary.problems.append("no image/label pairs found. " + pairing.explain())
        return summary
    shapes: Counter[tuple[int, int, int]] = Counter()
    dtypes: Counter[str] = Counter()
    for _split, img, _lbl in pairs:
        with rasterio.open(img) as src:
            shapes[(src.count, src.height, src.width)] += 1
            dtypes[src.dtypes[0]] += 1
            if summary.size is None:
                summary.size = (src.height, src.width)
                summary.dtype = src.dtypes[0]
                summary.crs = src.crs.to_string() if src.crs else None
                summary.band_count = src.count
                summary.band_names = band_names_of(src)
                summary.nodata = src.nodata
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
        summary.problems.append("no label masks found: training needs a mask per image. " + pairing.explain())
    summary.class_histogram = label_histogram(
        labelled, summary.problems, summary.warnings, max_label_reads, seed
    )
    return summary


def label_histogram(
    labelled: list[Path], problems: list[str], warnings: list[str], max_reads: int = 64, seed: int = 0
) -> dict[int, int]:
    """Pixels per label value over (a sample of ``max_reads`` of) the masks; problems appended."""
    import rasterio

    rng = random.Random(seed)
    sample = labelled if len(labelled) <= max_reads else rng.sample(labelled, max_reads)
    hist: Counter[int] = Counter()
    for lbl in sample:
        with rasterio.open(lbl) as src:
            values, counts = np.unique(src.read(1), return_counts=True)
            if src.count != 1:
                problems.append(f"label {lbl.name} has {src.count} bands; a mask needs one")
        hist.update({int(v): int(c) for v, c in zip(values, counts)})
    if labelled and len(sample) < len(labelled):
        warnings.append(f"class histogram from a sample of {len(sample)} of {len(labelled)} masks")
    return dict(sorted(hist.items()))


# Sentinel-2 MSI band numbers -> geoft's band names (the pretrained models' names)
SENTINEL2_BANDS = {
    "B1": "COASTAL_AEROSOL",
    "B2": "BLUE",
    "B3": "GREEN",
    "B4": "RED",
    "B5": "RED_EDGE_1",
    "B6": "RED_EDGE_2",
    "B7": "RED_EDGE_3",
    "B8": "NIR_BROAD",
    "B8A": "NIR_NARROW",
    "B9": "WATER_VAPOR",
    "B10": "CIRRUS",
    "B11": "SWIR_1",
    "B12": "SWIR_2",
}


def _sentinel2_number(name: str) -> str:
    key = name.strip().upper()
    return "B" + key[1:].lstrip("0") if key.startswith("B") and key[1:].lstrip("0") else key


def canonical_band_names(names: list[str]) -> list[str]:
    """Band names the models know: Sentinel-2 numbers (``B4``, ``B8A``, ``B04``) become ``RED``,
    ``NIR_NARROW``...; 13 unnamed bands are read as Sentinel-2 L1C order; other names are kept."""
    numbers = [_sentinel2_number(n) for n in names]
    if names and all(n in SENTINEL2_BANDS for n in numbers) and ("B8A" in numbers or len(names) >= 10):
        return [SENTINEL2_BANDS[n] for n in numbers]
    if len(names) == 13 and all(n.startswith("band ") for n in names):
        return list(SENTINEL2_BANDS.values())
    return list(names)


def default_rgb(band_names: list[str]) -> list[int]:
    """Positions of red, green and blue (``[2, 1, 0]`` when the names do not say)."""
    wanted = ("RED", "GREEN", "BLUE")
    upper = [b.upper() for b in band_names]
    if all(w in upper for w in wanted):
        return [upper.index(w) for w in wanted]
    return [2, 1, 0] if len(band_names) >= 3 else [0, 0, 0]


def suggested_ignore_index(histogram: dict[int, int]) -> int | None:
    """A label value that marks 'no data' rather than a class: a negative value, or 255 beside small ones."""
    values = sorted(histogram)
    negative = [v for v in values if v < 0]
    if negative:
        return negative[0]
    if 255 in values and len(values) > 1 and max(v for v in values if v != 255) < 64:
        return 255
    return None


def class_values(histogram: dict[int, int], ignore_index: int | None) -> list[int]:
    """The class values of a label histogram (the ignore value left out)."""
    return [v for v in sorted(histogram) if v != ignore_index and 0 <= v < 256]


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
        keys = ("class_names", "class_colors", "bands", "task")
        meta = {k: data[k] for k in keys if k in data}
        if "means" in data and "stds" in data:
            meta["statistics"] = {"means": data["means"], "stds": data["stds"]}
        return meta
    return {}


def dataset_kind(meta: dict[str, Any]) -> TaskKind:
    """What the labels of a dataset are, as the Data page saved it (segmentation masks by default)."""
    from geoft.app.form_choices import APP_KINDS

    try:
        kind = TaskKind.parse(meta.get("task") or TaskKind.SEGMENTATION)
    except ConfigError:
        return TaskKind.SEGMENTATION
    return kind if kind in APP_KINDS else TaskKind.SEGMENTATION


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
    args: dict[str, Any] = {"img_grep": summary.pairing.img_grep, "label_grep": summary.pairing.label_grep}
    split_dir = summary.root / "splits"
    for split in ("train", "val", "test"):
        s = by_name.get(split) or (by_name.get("all") if split in ("train", "val") else None)
        if s is None:
            continue
        args[f"{split}_data_root"] = str(s.image_dir)
        if s.label_dir is not None:
            args[f"{split}_label_data_root"] = str(s.label_dir)
        split_file = split_dir / f"{split}.txt"
        if s.name == split and split_file.is_file() and summary.root in (s.image_dir, s.image_dir.parent):
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
