"""Find image and label files with glob patterns and pair them BY NAME, never by sort order.

The key of a file is the part of its path that the wildcards of its pattern match, without a raster
extension: with ``img_grep="*_S2Hand.tif"`` and ``label_grep="*_LabelHand.tif"`` both
``Spain_1_S2Hand.tif`` and ``Spain_1_LabelHand.tif`` have the key ``Spain_1``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from geoft.datasets.problems import DataProblem

# the one list of raster file extensions (GeoTIFF first: what geoft writes, and what the app's data page lists)
GEOTIFF_EXTENSIONS = (".tif", ".tiff")
RASTER_EXTENSIONS = (
    *GEOTIFF_EXTENSIONS,
    *(ext.upper() for ext in GEOTIFF_EXTENSIONS),
    ".vrt",
    ".jp2",
    ".img",
    ".png",
    ".jpg",
    ".jpeg",
    ".nc",
    ".hdf",
)
# files next to rasters that a broad pattern like "*" would otherwise pick up
SIDECAR_SUFFIXES = (
    ".aux.xml",
    ".ovr",
    ".msk",
    ".json",
    ".txt",
    ".csv",
    ".md",
    ".xml",
    ".prj",
    ".tfw",
    ".yaml",
    ".yml",
)
CACHE_DIR_NAME = ".geoft_cache"


def strip_extension(name: str) -> str:
    for ext in RASTER_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Regex for a glob pattern in which every wildcard is a capture group."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("((?:.*/)?)")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append("(.*)")
            i += 2
            continue
        if ch == "*":
            out.append("([^/]*)")
        elif ch == "?":
            out.append("([^/])")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("([" + ("^" + body[1:] if body.startswith("!") else body) + "])")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


def file_key(relative: str, pattern: str) -> str:
    """The pairing key of a path (relative to its root, posix) found with ``pattern``."""
    match = _glob_regex(pattern).fullmatch(relative)
    if match is None or not match.groups():
        return strip_extension(Path(relative).name)
    return strip_extension("".join(match.groups()))


def _is_candidate(path: Path, dirs: bool, sidecars: bool = False) -> bool:
    if any(part.startswith(".") for part in path.parts[-1:]) or CACHE_DIR_NAME in path.parts:
        return False
    if dirs:
        return path.is_dir()
    if path.is_dir():
        # plain sub-folders are skipped; a folder named like a raster is reported when it is read
        return path.name.endswith(RASTER_EXTENSIONS)
    return sidecars or not path.name.lower().endswith(SIDECAR_SUFFIXES)


def find_files(
    root: str | Path, pattern: str, what: str = "image", dirs: bool = False, recursive: bool = False
) -> tuple[list[Path], list[DataProblem]]:
    """Files (or sample folders, ``dirs=True``) under ``root`` that match ``pattern``, sorted.

    ``root`` may also be a single file. ``recursive`` also searches sub-folders.
    """
    root = Path(root)
    if not root.exists():
        return [], [DataProblem("missing_folder", f"The {what} folder {root} does not exist.", str(root))]
    if root.is_file():
        return [root], []
    globbed = root.rglob(pattern) if recursive else root.glob(pattern)
    # a pattern naming a sidecar suffix itself (label_grep "*.txt" for YOLO, "*.json") wants those files
    sidecars = pattern.lower().endswith(SIDECAR_SUFFIXES)
    files = sorted(p for p in globbed if _is_candidate(p, dirs, sidecars))
    if files:
        return files, []
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        return [], [DataProblem("empty_folder", f"The {what} folder {root} is empty.", str(root))]
    examples = ", ".join(sorted(p.name for p in entries)[:5])
    kind = "folders" if dirs else "files"
    return [], [
        DataProblem(
            "grep_no_match",
            f"No {what} {kind} in {root} match the pattern {pattern!r} (the folder holds e.g. {examples}).",
            str(root),
        )
    ]


def keyed(
    files: Iterable[Path], root: str | Path, pattern: str, what: str
) -> tuple[dict[str, Path], list[DataProblem]]:
    """Map key -> file; two files with one key are a problem."""
    root = Path(root)
    out: dict[str, Path] = {}
    problems = []
    for f in files:
        rel = f.relative_to(root).as_posix() if root.is_dir() else f.name
        key = file_key(rel, pattern)
        if key in out:
            problems.append(
                DataProblem(
                    "duplicate_key",
                    f"{what} files {out[key]} and {f} have the same name key {key!r}; they cannot be told apart.",
                    str(f),
                )
            )
            continue
        out[key] = f
    return out, problems


def pair_by_key(
    images: dict[str, Path], labels: dict[str, Path], img_grep: str, label_grep: str
) -> tuple[list[tuple[str, Path, Path]], list[DataProblem]]:
    """Pair image and label files with the same key; report every image without label and vice versa."""
    problems = []
    same = set(images.values()) & set(labels.values())
    if same:
        example = sorted(same)[0]
        return [], [
            DataProblem(
                "grep_overlap",
                f"img_grep {img_grep!r} and label_grep {label_grep!r} both match {len(same)} files (e.g. {example}).",
                str(example),
            )
        ]
    pairs = [(k, images[k], labels[k]) for k in sorted(images) if k in labels]
    missing = sorted(set(images) - set(labels))
    extra = sorted(set(labels) - set(images))
    hint = ""
    if missing and extra and not pairs:
        hint = (
            f" No names match at all: image keys look like {missing[0]!r}, label keys like {extra[0]!r}. "
            "Pairing uses the part of the name matched by the wildcards; make the greps differ only in the "
            "fixed parts, e.g. img_grep='*_image.tif', label_grep='*_label.tif'."
        )
    for k in missing:
        problems.append(
            DataProblem(
                "missing_label",
                f"No label for image {images[k]} (name key {k!r}, label_grep {label_grep!r}).{hint}",
                str(images[k]),
            )
        )
        hint = ""
    for k in extra:
        problems.append(
            DataProblem(
                "extra_label",
                f"Label {labels[k]} has no image (name key {k!r}, img_grep {img_grep!r}).",
                str(labels[k]),
            )
        )
    return pairs, problems


def read_split_file(path: str | Path) -> tuple[list[str], list[DataProblem]]:
    """Names listed in a split file (one per line, or the first cell of CSV rows; blank lines and
    ``#`` comments ignored)."""
    path = Path(path)
    if not path.is_file():
        return [], [DataProblem("missing_split_file", f"Split file {path} does not exist.", str(path))]
    # a CSV row "image.tif,label.tif" (as in Sen1Floods11's split files) names the sample by its first cell
    names = [line.split(",")[0].strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        return [], [DataProblem("empty_split_file", f"Split file {path} lists no names.", str(path))]
    return names, []


def filter_by_split(
    items: dict[str, Path],
    split_file: str | Path,
    ignore_extensions: bool = True,
    allow_substring: bool = True,
) -> tuple[dict[str, Path], list[DataProblem]]:
    """Keep the items (key -> path) named in the split file; names that match nothing are problems.

    A name matches an item when it equals the key, the file name or the file stem (extensions
    ignored with ``ignore_extensions``), or, with ``allow_substring``, occurs in the file name.
    """
    names, problems = read_split_file(split_file)
    if problems:
        return {}, problems
    kept: dict[str, Path] = {}
    unmatched = []
    by_exact: dict[str, list[str]] = {}
    for key, path in items.items():
        for alias in {key, path.name, strip_extension(path.name)}:
            by_exact.setdefault(alias, []).append(key)
    for name in names:
        wanted = strip_extension(name) if ignore_extensions else name
        hits = by_exact.get(wanted, []) or by_exact.get(name, [])
        if not hits and allow_substring:
            hits = [k for k, p in items.items() if wanted in p.name]
        if not hits:
            unmatched.append(name)
        for k in hits:
            kept[k] = items[k]
    if unmatched:
        shown = ", ".join(repr(n) for n in unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        problems.append(
            DataProblem(
                "split_name_not_found",
                f"{len(unmatched)} names in split file {split_file} match no file: {shown}.",
                str(split_file),
            )
        )
    return dict(sorted(kept.items())), problems
