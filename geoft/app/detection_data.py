"""What the Data page shows about an object-detection dataset: where the annotations are, in which format,
the classes, objects per image and every problem with its file named.

Layouts: split folders (``train/``, ``val/``, ``test/``) or one folder, each with an image folder
(``images/``...) and annotations beside it: a folder of per-chip GeoJSON/GeoPackage files, a folder of
YOLO ``.txt`` files, or one COCO JSON file. Images and annotations pair by name stem. The reading is
:class:`geoft.datasets.detection.GenericObjectDetectionDataset`'s, the one training uses, in its
non-strict mode (problems listed, bad chips left out).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geoft.app.data_summary import image_band_names
from geoft.app.dataset_layout import labelled_folders, pick, read_labelled, sort_problems, training_splits
from geoft.datasets.annotations import VECTOR_SUFFIXES, PixelObject, detect_format
from geoft.errors import DataError

GALLERY_SIZE = 8
FORMATS = ("vector", "coco", "yolo")  # preferred in this order when several are present
# attribute columns that usually hold an object's class
CLASS_FIELDS = ("class", "class_name", "classname", "label", "category", "type")


@dataclass(frozen=True)
class LabelSource:
    """Where one split's annotations are: a folder of per-chip files (with their grep) or a COCO file."""

    format: str
    root: Path
    grep: str


@dataclass
class DetectionSplit:
    name: str
    image_dir: Path
    labels: LabelSource | None
    objects_per_image: dict[str, int] = field(default_factory=dict)  # image file name -> objects
    examples: list[tuple[Path, tuple[PixelObject, ...]]] = field(default_factory=list)  # for the gallery


@dataclass
class DetectionSummary:
    """Everything the Data page displays for object annotations."""

    root: Path
    splits: list[DetectionSplit]
    label_format: str | None
    formats_found: list[str]
    class_field: str | None
    class_names: list[str]
    class_counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    size: tuple[int, int] | None = None
    band_names: list[str] = field(default_factory=list)
    crs: str | None = None

    @property
    def image_count(self) -> int:
        return sum(len(s.objects_per_image) for s in self.splits)

    @property
    def object_count(self) -> int:
        return sum(sum(s.objects_per_image.values()) for s in self.splits)

    @property
    def empty_images(self) -> int:
        return sum(1 for s in self.splits for n in s.objects_per_image.values() if n == 0)

    @property
    def max_objects(self) -> int:
        return max((n for s in self.splits for n in s.objects_per_image.values()), default=0)

    @property
    def split_sizes(self) -> dict[str, int]:
        return {s.name: len(s.objects_per_image) for s in self.splits}


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.is_file() and p.suffix.lower() in suffixes)


def label_sources(split_dir: Path, image_dir: Path) -> dict[str, LabelSource]:
    """The annotation sources found beside the images of one split, by format."""
    found: dict[str, LabelSource] = {}
    folders = [d for d in sorted(split_dir.iterdir()) if d.is_dir() and d != image_dir] + [split_dir]
    for folder in folders:
        for path in _files(folder, (".json",)):
            if "coco" not in found and detect_format(path) == "coco":
                found["coco"] = LabelSource("coco", path, "*.json")
        vectors = [p for p in _files(folder, (*VECTOR_SUFFIXES, ".json")) if detect_format(p) == "vector"]
        if vectors and "vector" not in found:
            suffix = Counter(p.suffix for p in vectors).most_common(1)[0][0]
            found["vector"] = LabelSource("vector", folder, f"*{suffix}")
        if _files(folder, (".txt",)) and "yolo" not in found and folder != split_dir:
            found["yolo"] = LabelSource("yolo", folder, "*.txt")
    return found


def _class_field(columns: list[str]) -> str | None:
    by_lower = {c.lower(): c for c in columns}
    return next((by_lower[c] for c in CLASS_FIELDS if c in by_lower), None)


def discover_classes(source: LabelSource, max_files: int = 64) -> tuple[str | None, list[str]]:
    """The class field and the class names of a label source (names: the values found, or ``class i``
    for integer classes up to the largest; ``object`` when the files name no class)."""
    values: set[Any] = set()
    class_field = None
    if source.format == "coco":
        data = json.loads(source.root.read_text(encoding="utf-8"))
        categories = sorted(data.get("categories") or [], key=lambda c: c.get("id", 0))
        return None, [str(c.get("name") or f"class {i}") for i, c in enumerate(categories)] or ["object"]
    files = sorted(source.root.glob(source.grep))[:max_files]
    if source.format == "yolo":
        for path in files:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                head = line.split()[:1]
                if head and head[0].isdigit():
                    values.add(int(head[0]))
    else:
        import geopandas as gpd

        for path in files:
            try:
                frame = gpd.read_file(path, engine="pyogrio")
            except Exception:  # noqa: BLE001 - the dataset read below names the unreadable file
                continue
            class_field = class_field or _class_field([c for c in frame.columns if c != "geometry"])
            if class_field and class_field in frame.columns:
                values.update(v for v in frame[class_field].tolist() if v is not None)
    if not values:
        return class_field, ["object"]
    if all(isinstance(v, int) or (isinstance(v, str) and v.isdigit()) for v in values):
        return class_field, [f"class {i}" for i in range(max(int(v) for v in values) + 1)]
    return class_field, sorted(str(v) for v in values)


def summarize_detection(
    root: Path, label_format: str | None = None, class_names: list[str] | None = None
) -> DetectionSummary:
    """Find the images and annotations of a detection dataset and read them as training does."""
    from geoft.datasets.detection import GenericObjectDetectionDataset

    layout, problems = labelled_folders(root, label_sources)
    found = [f for f in FORMATS if any(f in sources for _n, _d, sources in layout)]
    chosen = pick(found, label_format)
    splits = [DetectionSplit(n, d, sources.get(chosen) if chosen else None) for n, d, sources in layout]
    summary = DetectionSummary(root, splits, chosen, found, None, ["object"], problems=problems)
    if chosen is None:
        summary.problems.append(
            "no annotations found beside the images: put per-chip GeoJSON/GeoPackage files in labels/, "
            "YOLO .txt files in a folder such as yolo/, or one COCO JSON file next to images/"
        )
        return summary
    first = next(s.labels for s in splits if s.labels is not None)
    summary.class_field, summary.class_names = discover_classes(first)
    if class_names and len(class_names) == len(summary.class_names):
        summary.class_names = list(class_names)  # the analyst's names for the same classes
    read_labelled(
        splits,
        lambda s: s.labels,
        lambda s: _read_split(summary, s, GenericObjectDetectionDataset),
        f"{chosen} annotations",
        summary.problems,
    )
    return summary


def _read_split(summary: DetectionSummary, split: DetectionSplit, dataset_class: Any) -> None:
    assert split.labels is not None
    dataset = dataset_class(
        data_root=split.image_dir,
        num_classes=len(summary.class_names),
        label_data_root=split.labels.root,
        label_grep=split.labels.grep,
        class_names=summary.class_names if summary.class_field or summary.label_format == "coco" else None,
        label_format=summary.label_format,
        class_field=summary.class_field,
        strict=False,
        name=split.name,
    )
    sort_problems(dataset.problems, split.name, summary.problems, summary.warnings)
    if dataset.dropped:
        summary.warnings.append(
            f"{split.name}: {dataset.dropped} object(s) cut by the chip border to under 1 pixel are left out"
        )
    split.examples = [(r.image, r.objects) for r in dataset.samples[:GALLERY_SIZE]]
    for record in dataset.samples:
        split.objects_per_image[record.image.name] = len(record.objects)
        summary.class_counts.update(summary.class_names[o.label] for o in record.objects)
        if summary.size is None:
            summary.size = tuple(record.header.shape)
            summary.crs = _short_crs(record.header.crs)
            summary.band_names = image_band_names(record.image)


def boxes_preview(
    image: Path, objects: tuple[PixelObject, ...], rgb: list[int], colors: list[tuple[int, int, int]]
) -> np.ndarray:
    """The chip in RGB (percentile-stretched) with each object's box in its class colour, ``[H, W, 3]``."""
    import rasterio
    import torch
    from torchvision.utils import draw_bounding_boxes

    from geoft.app.imagery import percentile_stretch

    with rasterio.open(image) as src:
        rgb = [min(i, src.count - 1) for i in rgb]
        picture = percentile_stretch(src.read(), rgb, nodata=src.nodata)[..., :3]
    if not objects:
        return picture
    boxes = torch.tensor([o.box for o in objects], dtype=torch.float32)
    drawn = draw_bounding_boxes(
        torch.from_numpy(np.ascontiguousarray(picture)).permute(2, 0, 1),
        boxes,
        colors=[colors[o.label % len(colors)] for o in objects],
        width=1,
    )
    return drawn.permute(1, 2, 0).numpy()


def _short_crs(crs: str | None) -> str | None:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(crs).to_string() if crs else None
    except CRSError:
        return crs


def detection_datamodule_paths(summary: DetectionSummary) -> dict[str, Any]:
    """Where-the-files arguments of ``GenericObjectDetectionDataModule`` for this dataset."""
    if summary.label_format is None:
        raise DataError(f"{summary.root} has no annotations to train on")
    splits = training_splits({s.name: s for s in summary.splits if s.labels is not None}, summary.root)
    labels = {name: s.labels for name, s in splits.items() if s.labels is not None}
    args: dict[str, Any] = {
        "img_grep": "*.tif",
        "label_grep": labels["train"].grep,
        "label_format": summary.label_format,
    }
    if summary.class_field:
        args["class_field"] = summary.class_field
    for name, s in splits.items():
        args[f"{name}_data_root"] = str(s.image_dir)
        args[f"{name}_label_data_root"] = str(labels[name].root)
    return args


def ensure_detection_demo(root: Path, chips: int = 24, size: int = 64) -> Path:
    """A small generated detection dataset in ``root`` (bright rectangles of two classes on 3-band noise,
    GeoJSON, YOLO and COCO labels), made once."""
    from geoft.datasets.detection_demo import generate_detection_chips

    root = Path(root)
    if not (root / "dataset.json").is_file():
        generate_detection_chips(root / "train", n=chips, size=size, num_classes=2, empty_every=6, seed=1)
        generate_detection_chips(root / "val", n=max(4, chips // 4), size=size, num_classes=2, seed=2)
        # class k is bright in band k: name the bands so that any backbone (Prithvi too) reads them
        sidecar = {"bands": ["BLUE", "GREEN", "RED"], "class_names": ["class 0", "class 1"]}
        (root / "dataset.json").write_text(json.dumps(sidecar))
    return root


__all__ = [
    "DetectionSummary",
    "detection_datamodule_paths",
    "ensure_detection_demo",
    "summarize_detection",
]
