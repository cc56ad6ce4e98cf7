"""Several sensors per sample: which modalities a dataset folder holds, and how their files pair.

Two layouts, per split folder (``train/``...) or in the dataset folder itself:

- one folder per modality beside the label folder (``S2Hand/``, ``S1Hand/``, ``LabelHand/``);
- one folder, the modality told by a name pattern (``*_S2Hand.tif``, ``*_S1Hand.tif``, ``*_LabelHand.tif``).

Files pair by name stem, as :class:`geoft.datamodules.GenericMultiModalDataModule` pairs them: the key
of a file is what the wildcards of its modality's pattern match. Dated files (``field_12_S2_20200105.tif``)
group by the part without the date (:mod:`geoft.app.modality_dates`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoft.app.data_summary import band_names_of, canonical_band_names
from geoft.app.dataset_layout import SPLIT_NAMES, is_label_token, rasters_in, split_folders, trailing_token
from geoft.app.modality_dates import (
    DatedFiles,
    date_in_name,
    glob_of,
    group_dated,
    propose_time_grep,
    read_dates,
    undated_stem,
)
from geoft.datasets.pairing import strip_extension
from geoft.models.backbones.terramind_modalities import canonical_name

MAX_HEADER_READS = 2000  # files whose header is read per modality (band count, grid); the rest are counted


@dataclass
class ModalityInfo:
    """One modality: where its files are, how they are named, what they hold."""

    token: str  # what identifies it in the layout: its folder name, or its name pattern's suffix
    name: str
    image_grep: str
    folders: dict[str, Path]
    files: dict[str, dict[str, list[Path]]]  # split -> sample key -> its files (several: its dates)
    bands: list[str] = field(default_factory=list)
    file_band_names: list[str] = field(default_factory=list)
    size: tuple[int, int] | None = None
    crs: str | None = None
    resolution: tuple[float, float] | None = None
    dtype: str | None = None
    dates: DatedFiles = field(default_factory=DatedFiles)
    problems: list[str] = field(default_factory=list)

    @property
    def file_count(self) -> int:
        return sum(len(v) for by_key in self.files.values() for v in by_key.values())

    @property
    def band_count(self) -> int:
        return len(self.file_band_names)

    def keys(self) -> set[str]:
        return {k for by_key in self.files.values() for k in by_key}

    @property
    def time_grep(self) -> str | None:
        return self.dates.time_grep


@dataclass
class MultiModalLayout:
    """The modalities of a dataset, its labels, and the samples each lacks."""

    root: Path
    kind: str  # "folders" or "patterns"
    modalities: list[ModalityInfo]
    label_grep: str
    label_folders: dict[str, Path]
    label_keys: dict[str, set[str]]
    label_resolution: tuple[float, float] | None = None
    label_crs: str | None = None
    label_files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def class_histogram(self, warnings: list[str]) -> dict[int, int]:
        """Pixels per label value (a sample of the masks), as the one-stack summary counts them."""
        from geoft.app.data_summary import label_histogram

        return label_histogram(self.label_files, self.problems, warnings)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modalities]

    def all_keys(self) -> set[str]:
        keys = {k for ks in self.label_keys.values() for k in ks}
        return keys.union(*(m.keys() for m in self.modalities))

    def missing(self, modality: ModalityInfo) -> list[str]:
        """Samples (of any modality or label) that lack this modality."""
        return sorted(self.all_keys() - modality.keys())

    def unlabelled(self) -> list[str]:
        labelled = {k for ks in self.label_keys.values() for k in ks}
        return sorted(self.all_keys() - labelled)

    def complete_count(self) -> int:
        """Samples that have every modality and a label."""
        keys = {k for ks in self.label_keys.values() for k in ks}
        return len(keys.intersection(*(m.keys() for m in self.modalities)))


def suggested_name(token: str, band_count: int) -> str:
    """A modality name: TerraMind's name where the token says the sensor (``S2Hand`` with 13 bands is
    ``S2L1C``, ``S1Hand`` is ``S1GRD``), else the token without separators."""
    bare = token.strip("_-. ")
    upper = bare.upper()
    if "S2" in upper or "SENTINEL2" in upper:
        return {13: "S2L1C", 12: "S2L2A", 3: "S2RGB"}.get(band_count, bare)
    if "S1" in upper or "SENTINEL1" in upper:
        return "S1RTC" if "RTC" in upper else "S1GRD"
    if "DEM" in upper and band_count == 1:
        return "DEM"
    return bare or "image"


def suggested_bands(name: str, file_names: list[str]) -> list[str]:
    """Band names the models know: Sentinel-2 numbers renamed, VV/VH for two unnamed radar bands."""
    unnamed = all(n.startswith("band ") for n in file_names)
    canonical = canonical_name(name) if "." not in name else None
    if unnamed and canonical in ("S1GRD", "S1RTC") and len(file_names) == 2:
        return ["VV", "VH"]
    if unnamed and canonical == "DEM" and len(file_names) == 1:
        return ["DEM"]
    return canonical_band_names(file_names)


def _stem_for_token(path: Path) -> str:
    found = date_in_name(path.name)
    return undated_stem(path.name, found) if found is not None else strip_extension(path.name)


def _token_of(path: Path) -> str:
    token = trailing_token(Path(_stem_for_token(path) + ".tif"))
    return "" if token.strip("_").isdigit() else token


def _common(tokens: list[str]) -> str:
    found = set(tokens)
    return found.pop() if len(found) == 1 else ""


def _pattern_groups(files: list[Path]) -> dict[str, list[Path]] | None:
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(_token_of(f), []).append(f)
    labels = [t for t in groups if t and is_label_token(t)]
    images = [t for t in groups if not is_label_token(t)]
    if len(labels) != 1 or not images:
        return None
    return groups


def _folder_groups(folder: Path) -> dict[str, list[Path]] | None:
    subdirs = {c.name: rasters_in(c, recursive=False) for c in sorted(folder.iterdir()) if c.is_dir()}
    subdirs = {n: f for n, f in subdirs.items() if f and n.lower() not in SPLIT_NAMES}
    labels = [n for n in subdirs if is_label_token(n)]
    if len(labels) != 1 or len(subdirs) < 2:
        return None
    return subdirs


def _grep(token: str, extension: str, dated: bool) -> str:
    return f"*{token}{'*' if dated else ''}{extension}"


def _keys(files: list[Path], token: str) -> dict[str, list[Path]]:
    """Sample key -> files: the undated stem without the token (dated files share one key)."""
    out: dict[str, list[Path]] = {}
    for f in files:
        stem = _stem_for_token(f)
        key = stem[: len(stem) - len(token)] if token and stem.endswith(token) else stem
        out.setdefault(key, []).append(f)
    return out


def _read_headers(info: ModalityInfo, paths: list[Path]) -> None:
    import rasterio
    from rasterio.errors import RasterioIOError

    shapes: Counter[tuple[int, int, int]] = Counter()
    examples: dict[tuple[int, int, int], str] = {}
    for path in paths[:MAX_HEADER_READS]:
        try:
            with rasterio.open(path) as src:
                shape = (src.count, src.height, src.width)
                if info.size is None:
                    info.size = (src.height, src.width)
                    info.crs = src.crs.to_string() if src.crs else None
                    info.resolution = (abs(src.res[0]), abs(src.res[1]))
                    info.dtype = src.dtypes[0]
                    info.file_band_names = band_names_of(src)
        except RasterioIOError as err:
            info.problems.append(f"{path.name} cannot be read: {str(err).splitlines()[0]}")
            continue
        shapes[shape] += 1
        examples.setdefault(shape, path.name)
    if len(shapes) > 1:
        info.problems.append(
            "files differ in band count or size: "
            + ", ".join(
                f"{c}×{h}×{w} ({n} files, e.g. {examples[(c, h, w)]})"
                for (c, h, w), n in shapes.most_common(4)
            )
        )


def _modality(
    token: str, by_split: dict[str, tuple[Path, list[Path]]], override: dict[str, Any]
) -> ModalityInfo:
    everything = [f for _folder, files in by_split.values() for f in files]
    extension = everything[0].suffix if everything else ".tif"
    name_token = _common([_token_of(f) for f in everything])
    grouped = group_dated(everything)
    files = {split: _keys(fs, name_token) for split, (_folder, fs) in by_split.items()}
    info = ModalityInfo(
        token=token,
        name="",
        image_grep=_grep(name_token, extension, grouped is not None),
        folders={split: folder for split, (folder, _fs) in by_split.items()},
        files=files,
    )
    _read_headers(info, everything)
    info.name = str(override.get("name") or suggested_name(token, info.band_count))
    info.bands = list(override.get("bands") or suggested_bands(info.name, info.file_band_names))
    if len(info.bands) != info.band_count and info.band_count:
        info.problems.append(
            f"{len(info.bands)} band names for {info.band_count} bands in the files (e.g. {everything[0].name})"
        )
    time_grep = override.get("time_grep")
    if time_grep is None and grouped is not None:
        key_of_stem = {
            _stem_for_token(f): k for by_key in files.values() for k, fs in by_key.items() for f in fs
        }
        time_grep = propose_time_grep(everything, key_of_stem)
        if time_grep is None:
            info.problems.append(
                "several files per sample differ by a date, but not in one naming pattern: "
                "state the date pattern (time_grep) below"
            )
    if time_grep and "{sample}" in time_grep:
        info.image_grep = glob_of(time_grep)
    info.dates = read_dates(everything, time_grep or None, read_tags=len(everything) <= MAX_HEADER_READS)
    info.problems += info.dates.problems
    return info


def _split_groups(root: Path) -> tuple[str, dict[str, dict[str, tuple[Path, list[Path]]]]] | None:
    """``(kind, {token: {split: (folder, files)}})``: the same modalities in every split folder."""
    splits = split_folders(root) or [("all", root)]
    found: dict[str, dict[str, tuple[Path, list[Path]]]] = {}
    kind = None
    for split, folder in splits:
        groups = _folder_groups(folder)
        this_kind = "folders"
        if groups is None:
            groups = _pattern_groups(rasters_in(folder, recursive=False))
            this_kind = "patterns"
        if groups is None or kind not in (None, this_kind):
            return None
        kind = this_kind
        for token, files in groups.items():
            where = folder / token if this_kind == "folders" else folder
            found.setdefault(token, {})[split] = (where, files)
    return (kind, found) if kind else None


def detect_modalities(
    root: Path, overrides: dict[str, dict[str, Any]] | None = None
) -> MultiModalLayout | None:
    """The modalities of a dataset folder, or None when it holds one kind of image (or none).

    ``overrides``: per modality token, the analyst's ``name``, ``bands`` and ``time_grep``.
    A single modality with dated files counts too (one modality, several dates).
    """
    root = Path(root)
    if not root.is_dir():
        return None
    detected = _split_groups(root)
    if detected is None:
        return None
    kind, groups = detected
    label_tokens = [t for t in groups if is_label_token(t)]
    label_token = label_tokens[0]
    label_files = {split: files for split, (_f, files) in groups[label_token].items()}
    everything = [f for fs in label_files.values() for f in fs]
    label_name_token = _common([_token_of(f) for f in everything])
    layout = MultiModalLayout(
        root=root,
        kind=kind,
        modalities=[],
        label_grep=_grep(label_name_token, everything[0].suffix, False),
        label_folders={split: folder for split, (folder, _f) in groups[label_token].items()},
        label_keys={split: set(_keys(fs, label_name_token)) for split, fs in label_files.items()},
        label_files=everything,
    )
    _label_grid(layout, everything[0])
    for token in groups:
        if token != label_token:
            layout.modalities.append(_modality(token, groups[token], (overrides or {}).get(token, {})))
    layout.modalities.sort(key=lambda m: (-m.band_count, m.name))  # the richest sensor first
    if len(layout.modalities) < 2 and not any(m.dates.source == "names" for m in layout.modalities):
        return None
    names = Counter(layout.names)
    layout.problems += [
        f"two modalities are named {n!r}: name each differently" for n, c in names.items() if c > 1
    ]
    return layout


def _label_grid(layout: MultiModalLayout, first: Path) -> None:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(first) as src:
            layout.label_resolution = (abs(src.res[0]), abs(src.res[1]))
            layout.label_crs = src.crs.to_string() if src.crs else None
    except RasterioIOError as err:
        layout.problems.append(f"label {first.name} cannot be read: {str(err).splitlines()[0]}")


def single_stack_possible(layout: MultiModalLayout) -> bool:
    """A flat folder of undated files also reads as one stack of bands (its richest modality, paired with
    the labels by suffix), as the app read such folders before it knew modalities."""
    return layout.kind == "patterns" and not any(m.dates.source == "names" for m in layout.modalities)


def reads_modalities(layout: MultiModalLayout, meta: dict[str, Any]) -> bool:
    """Whether the dataset is read as several modalities: the saved choice, else only where one stack
    cannot read it (a folder per modality, dated files); a flat folder stays one stack until chosen."""
    if not single_stack_possible(layout):
        return True
    return bool(meta.get("multimodal", False))


def multimodal_paths(layout: MultiModalLayout, allow_missing: bool = False) -> dict[str, Any]:
    """``GenericMultiModalDataModule`` arguments saying where the files are: modalities, data roots per
    modality and split, label roots, greps, ``time_grep`` of the dated modalities."""
    from geoft.app.dataset_layout import training_splits

    splits = training_splits({s: s for s in layout.label_folders}, layout.root)
    args: dict[str, Any] = {
        "modalities": layout.names,
        "task": "segmentation",
        "image_grep": {m.name: m.image_grep for m in layout.modalities},
        "label_grep": layout.label_grep,
    }
    for split, source in splits.items():
        args[f"{split}_data_root"] = {m.name: str(m.folders[source]) for m in layout.modalities}
        args[f"{split}_label_data_root"] = str(layout.label_folders[source])
    dated = {m.name: m.time_grep for m in layout.modalities if m.time_grep}
    if dated:
        args["time_grep"] = dated
    if allow_missing:
        args["allow_missing_modalities"] = True
    return args
