"""How a dataset folder is laid out and how its images pair with their labels.

Layouts: split folders (``train/``, ``val/``, ``test/``) each with an image and a label folder (or
images and labels side by side); one image and one label folder (optional ``splits/*.txt``); or one
folder holding both, told apart by suffix (``NAME_S2Hand.tif`` / ``NAME_LabelHand.tif``).
Pairing is :mod:`geoft.datasets.pairing`'s, the rule training uses: the part of the name that the
wildcard of ``*<suffix>.tif`` matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from geoft.datasets.pairing import (
    GEOTIFF_EXTENSIONS,
    file_key,
    filter_by_split,
    find_files,
    keyed,
    pair_by_key,
    strip_extension,
)
from geoft.datasets.problems import DataProblem
from geoft.errors import DataError

T = TypeVar("T")

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
_LABEL_WORDS = ("label", "mask", "gt", "annotation", "target")


@dataclass(frozen=True)
class Pairing:
    """How image and label files pair: by the part of the name before these suffixes."""

    image_suffix: str = ""
    label_suffix: str = ""
    extension: str = ".tif"

    @property
    def img_grep(self) -> str:
        return f"*{self.image_suffix}{self.extension}"

    @property
    def label_grep(self) -> str:
        return f"*{self.label_suffix}{self.extension}"

    def explain(self) -> str:
        """The pairing rule in words, with an example."""
        return (
            f"Images match `{self.img_grep}` and labels match `{self.label_grep}`; an image and a label pair "
            f"when the rest of their names is the same (`NAME{self.image_suffix}{self.extension}` pairs with "
            f"`NAME{self.label_suffix}{self.extension}`)."
        )


@dataclass
class SplitFiles:
    """Paired image/label files of one split."""

    name: str
    image_dir: Path
    label_dir: Path | None
    pairs: list[tuple[Path, Path | None]]


def rasters_in(folder: Path, recursive: bool = True) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in found if p.suffix.lower() in GEOTIFF_EXTENSIONS and p.is_file())


def _find_dir(parent: Path, names: tuple[str, ...]) -> Path | None:
    for child in sorted(parent.iterdir()):
        if child.is_dir() and child.name.lower() in names:
            return child
    return None


def split_folders(root: Path) -> list[tuple[str, Path]]:
    """``(split, folder)`` of the split folders of a dataset (``train/``, ``validation/``...)."""
    return [
        (SPLIT_NAMES[c.name.lower()], c)
        for c in sorted(Path(root).iterdir())
        if c.is_dir() and c.name.lower() in SPLIT_NAMES
    ]


def image_folder(folder: Path) -> Path | None:
    """The image folder of a split (``images/``...), the folder itself when it holds the rasters."""
    found = _find_dir(folder, IMAGE_DIRS)
    if found is None and rasters_in(folder, recursive=False):
        return folder
    return found


def labelled_folders(
    root: Path, find_labels: Callable[[Path, Path], T]
) -> tuple[list[tuple[str, Path, T]], list[str]]:
    """``(split, image folder, find_labels(split folder, image folder))`` of each split folder (the root
    as split ``all`` without them), and the folders without images. For labels that are no rasters."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder", hint="choose a dataset folder")
    found, problems = [], []
    for name, folder in split_folders(root) or [("all", root)]:
        images = image_folder(folder)
        if images is None:
            problems.append(f"{folder.name}/ has no image folder (expected one of {', '.join(IMAGE_DIRS)})")
            continue
        found.append((name, images, find_labels(folder, images)))
    if not found:
        raise DataError(
            f"{root} has no image folder", hint=f"put the chips in one of {', '.join(IMAGE_DIRS)}"
        )
    return found, problems


def training_splits(by_name: dict[str, T], root: Path) -> dict[str, T]:
    """``train``/``val``/``test`` -> split (a single ``all`` folder serves training and validation)."""
    if "train" not in by_name and "all" not in by_name:
        raise DataError(f"{root} has no training split with labels", hint="add a train/ folder")
    out = {}
    for split in ("train", "val", "test"):
        chosen = by_name.get(split) or (by_name.get("all") if split in ("train", "val") else None)
        if chosen is not None:
            out[split] = chosen
    return out


def pick(found: list[str], wanted: str | None) -> str | None:
    """``wanted`` when it was found, else the first found (None: nothing found)."""
    return wanted if wanted in found else next(iter(found), None)


def read_labelled(
    splits: Iterable[T],
    labels: Callable[[T], object],
    read: Callable[[T], None],
    what: str,
    problems: list[str],
) -> None:
    """``read`` each split that has labels; a problem for each that has none (``what``: their kind)."""
    for split in splits:
        if labels(split) is None:
            problems.append(f"{split.name}: no {what} beside {split.image_dir.name}/")  # type: ignore[attr-defined]
        else:
            read(split)


def sort_problems(
    problems: Iterable[DataProblem], split: str, errors: list[str], warnings: list[str]
) -> None:
    """Append each problem, prefixed by its split, to ``errors`` or ``warnings`` by its severity."""
    for problem in problems:
        (errors if problem.severity == "error" else warnings).append(f"{split}: {problem.message}")


def trailing_token(path: Path) -> str:
    """``_S2Hand`` of ``Spain_1_S2Hand.tif``; '' when the name has no ``_``."""
    stem = strip_extension(path.name)
    return stem[stem.rfind("_") :] if "_" in stem else ""


def _common_token(paths: list[Path]) -> str:
    tokens = {trailing_token(p) for p in paths}
    return tokens.pop() if len(tokens) == 1 else ""


def is_label_token(token: str) -> bool:
    return any(word in token.lower() for word in _LABEL_WORDS)


def _band_count(path: Path) -> int:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            return src.count
    except RasterioIOError:
        return 0


def _flat_suffixes(files: list[Path]) -> tuple[str, str] | None:
    """Image and label suffixes of a folder that holds both, told apart by their last ``_token``."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(trailing_token(f), []).append(f)
    if len(groups) < 2:
        return None
    labels = [t for t in groups if is_label_token(t)]
    if len(labels) != 1:
        return None
    images = [t for t in groups if t != labels[0]]
    # several image kinds (e.g. Sentinel-1 and Sentinel-2 chips): the one with the most bands
    image = max(images, key=lambda t: (_band_count(groups[t][0]), len(groups[t])))
    return image, labels[0]


def _pair(
    split: str,
    image_dir: Path,
    label_dir: Path | None,
    pairing: Pairing,
    problems: list[str],
) -> list[tuple[Path, Path | None]]:
    """Pair with :mod:`geoft.datasets.pairing`, the rule training uses."""
    images, found = find_files(image_dir, pairing.img_grep, "image")
    image_keys, dupes = keyed(images, image_dir, pairing.img_grep, "image")
    problems += [p.message for p in found + dupes]
    if label_dir is None:
        return [(p, None) for _k, p in sorted(image_keys.items())]
    labels, found = find_files(label_dir, pairing.label_grep, "label")
    label_keys, dupes = keyed(labels, label_dir, pairing.label_grep, "label")
    problems += [p.message for p in found + dupes]
    if label_dir == image_dir:
        image_keys = {k: v for k, v in image_keys.items() if v not in set(label_keys.values())}
    pairs, _details = pair_by_key(image_keys, label_keys, pairing.img_grep, pairing.label_grep)
    missing = sorted(set(image_keys) - set(label_keys))
    orphans = sorted(set(label_keys) - set(image_keys))
    if missing:
        problems.append(
            f"{split}: {len(missing)} image(s) have no label in {label_dir.name}/, e.g. {missing[0]!r}"
        )
    if orphans:
        problems.append(
            f"{split}: {len(orphans)} label(s) have no image in {image_dir.name}/, e.g. {orphans[0]!r}"
        )
    if image_keys and label_keys and not pairs:
        problems.append(
            "no image pairs with a label. " + pairing.explain() + " State the two suffixes below "
            "(e.g. `_S2Hand` and `_LabelHand` for Sen1Floods11)."
        )
    return [(img, lbl) for _k, img, lbl in pairs]


def detect_pairing(image_dir: Path, label_dir: Path | None) -> Pairing:
    """Suffixes that pair the most files (none, or a ``_token`` all images or labels share)."""
    images = rasters_in(image_dir, recursive=False)
    extension = images[0].suffix if images else ".tif"
    if label_dir is None or label_dir == image_dir:
        flat = _flat_suffixes(images)
        if flat is not None:
            return Pairing(*flat, extension)
        return Pairing(extension=extension)
    labels = rasters_in(label_dir, recursive=False)
    best, best_count = Pairing(extension=extension), -1
    for img_suffix in dict.fromkeys((_common_token(images), "")):
        for lbl_suffix in dict.fromkeys((_common_token(labels), "")):
            candidate = Pairing(img_suffix, lbl_suffix, extension)
            image_keys = {
                strip_extension(p.name)[: len(strip_extension(p.name)) - len(img_suffix)] for p in images
            }
            label_keys = {
                strip_extension(p.name)[: len(strip_extension(p.name)) - len(lbl_suffix)] for p in labels
            }
            count = len(image_keys & label_keys)
            if count > best_count:
                best, best_count = candidate, count
    return best


def _with_overrides(detected: Pairing, image_suffix: str | None, label_suffix: str | None) -> Pairing:
    return Pairing(
        detected.image_suffix if image_suffix is None else image_suffix.strip(),
        detected.label_suffix if label_suffix is None else label_suffix.strip(),
        detected.extension,
    )


def find_splits(
    root: Path, image_suffix: str | None = None, label_suffix: str | None = None
) -> tuple[list[SplitFiles], list[str], Pairing]:
    """Detect the layout of a dataset folder and pair its files; problems are returned, not raised.

    ``image_suffix``/``label_suffix`` override the detected suffixes (``None``: detect).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder", hint="choose a dataset folder")
    problems: list[str] = []
    splits: list[SplitFiles] = []
    pairing: Pairing | None = None
    for split, child in split_folders(root):
        image_dir = image_folder(child)
        # images and labels side by side, told apart by suffix
        label_dir = child if image_dir == child else _find_dir(child, LABEL_DIRS)
        if image_dir is None:
            problems.append(f"{child.name}/ has no image folder (expected one of {', '.join(IMAGE_DIRS)})")
            continue
        if pairing is None:
            pairing = _with_overrides(detect_pairing(image_dir, label_dir), image_suffix, label_suffix)
        splits.append(
            SplitFiles(split, image_dir, label_dir, _pair(split, image_dir, label_dir, pairing, problems))
        )
    if splits:
        return splits, problems, pairing or Pairing()
    image_dir = _find_dir(root, IMAGE_DIRS)
    label_dir = _find_dir(root, LABEL_DIRS)
    if image_dir is None and rasters_in(root, recursive=False):
        image_dir = label_dir = root
    if image_dir is None:
        raise DataError(
            f"{root} has neither split folders (train/, val/, test/), an image folder nor GeoTIFFs",
            hint=f"put images in one of {', '.join(IMAGE_DIRS)} and masks in one of {', '.join(LABEL_DIRS)}, "
            "or images and masks side by side with different suffixes (NAME_image.tif, NAME_label.tif)",
        )
    pairing = _with_overrides(detect_pairing(image_dir, label_dir), image_suffix, label_suffix)
    pairs = _pair("all", image_dir, label_dir, pairing, problems)
    split_dir = root / "splits"
    if split_dir.is_dir() and any(split_dir.glob("*.txt")):
        by_key = {
            file_key(img.relative_to(image_dir).as_posix(), pairing.img_grep): (img, lbl)
            for img, lbl in pairs
        }
        for txt in sorted(split_dir.glob("*.txt")):
            kept, split_problems = filter_by_split({k: v[0] for k, v in by_key.items()}, txt)
            problems += [f"splits/{txt.name}: {p.message}" for p in split_problems]
            chosen = [by_key[k] for k in kept]
            splits.append(
                SplitFiles(SPLIT_NAMES.get(txt.stem.lower(), txt.stem), image_dir, label_dir, chosen)
            )
        return splits, problems, pairing
    return [SplitFiles("all", image_dir, label_dir, pairs)], problems, pairing
