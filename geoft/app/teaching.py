"""Teach by drawing: shapes drawn on the map become sparse labels, a training round, and a prediction.

The map (:mod:`geoft.app.teach_map`) returns every shape on it as GeoJSON in WGS84 (streamlit-folium's
``all_drawings``). Shapes already saved come back with their ``class`` property; a shape just drawn has
none and takes the class chosen for the next shapes. They are kept at ``<app home>/labels/<scene>.gpkg``
in the scene's CRS (:func:`geoft.datasets.drawn_labels.save_drawn_labels`) after every change, so the
work survives a reload and the CLI can reuse it. A round cuts the labelled chips, builds a ``geoft fit``
config (ignore_index -1: unlabelled pixels teach nothing) and submits it; from the second round on it
starts from the previous round's best checkpoint (:class:`geoft.runs.initial_weights.InitialWeights`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geoft.app.forms import PRESETS, DataChoice, TrainChoice, build_config
from geoft.app.jobs import JobRunner
from geoft.app.run_store import RunRecord, RunStore
from geoft.app.uploads import safe_filename
from geoft.datasets.drawn_labels import CLASS_COLUMN, LabelChips, read_drawn_labels, save_drawn_labels
from geoft.errors import ConfigError, DataError

IGNORE_INDEX = -1
TEACH_TAG = "teach"
INITIAL_WEIGHTS = "geoft.runs.initial_weights.InitialWeights"
CHIP_SIZE = 64
_SPLIT_KEYS = ("data_root", "label_data_root", "split")


def scene_key(scene: str | Path) -> str:
    """The scene's name in file names and run tags (its file stem, made safe)."""
    return safe_filename(Path(scene).stem)


def labels_path(home: Path, scene: str | Path) -> Path:
    return Path(home) / "labels" / f"{scene_key(scene)}.gpkg"


def saved_features(path: Path, scene: str | Path, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """The saved shapes as GeoJSON features in WGS84 (``properties.class``); none when nothing is saved."""
    if not path.is_file():
        return []
    frame = read_drawn_labels(path, scene, class_names).to_crs("EPSG:4326")
    return [
        {
            "type": "Feature",
            "properties": {CLASS_COLUMN: str(row[CLASS_COLUMN])},
            "geometry": row.geometry.__geo_interface__,
        }
        for _, row in frame.iterrows()
    ]


def classify_drawings(
    drawings: Sequence[Mapping[str, Any]], class_names: Sequence[str], next_class: str
) -> list[dict[str, Any]]:
    """``all_drawings`` with a class each: a shape's own ``class`` property, else ``next_class``."""
    if next_class not in class_names:
        raise ConfigError(f"class {next_class!r} is not one of {', '.join(class_names)}")
    out = []
    for drawing in drawings:
        name = (drawing.get("properties") or {}).get(CLASS_COLUMN) or next_class
        out.append(
            {"type": "Feature", "properties": {CLASS_COLUMN: name}, "geometry": drawing.get("geometry")}
        )
    return out


def _same(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    from shapely.geometry import shape

    if len(a) != len(b):
        return False
    for fa, fb in zip(a, b):
        if fa["properties"][CLASS_COLUMN] != fb["properties"][CLASS_COLUMN]:
            return False
        if not shape(fa["geometry"]).equals_exact(shape(fb["geometry"]), 1e-9):
            return False
    return True


def store_drawings(
    drawings: Sequence[Mapping[str, Any]] | None,
    scene: str | Path,
    class_names: Sequence[str],
    next_class: str,
    path: Path,
) -> bool:
    """Save the map's shapes to ``path`` when they changed (all deleted: the file goes); True if saved.

    ``drawings`` None (the map has not reported yet) changes nothing. Unchanged shapes are not
    rewritten: saving redraws the map, which reports its shapes again.
    """
    if drawings is None:
        return False
    features = classify_drawings(drawings, class_names, next_class)
    if _same(features, saved_features(path, scene, class_names)):
        return False
    if not features:
        path.unlink(missing_ok=True)
        return True
    save_drawn_labels(features, scene, class_names, path)
    return True


def scene_statistics(
    scene: str | Path, indexes: Sequence[int] | None = None
) -> tuple[list[float], list[float]]:
    """Per-band means and stds of ``scene`` (valid pixels, decimated read) for normalisation."""
    from geoft.app.maps import read_for_display

    raster = read_for_display(scene, max_size=1024)
    data = raster.array.astype(np.float64)
    if indexes is not None:
        data = data[[i - 1 for i in indexes]]
    valid = (
        np.ones(data.shape[1:], bool) if raster.nodata is None else np.all(raster.array != raster.nodata, 0)
    )
    if not valid.any():
        raise DataError(f"scene {scene} has no valid pixel")
    pixels = data[:, valid]
    return pixels.mean(1).tolist(), np.maximum(pixels.std(1), 1e-6).tolist()


def band_names(scene: str | Path) -> list[str]:
    """The scene's band descriptions, or ``band_1``... where it has none."""
    import rasterio

    with rasterio.open(scene) as src:
        return [d or f"band_{i + 1}" for i, d in enumerate(src.descriptions)]


def _chip_split(chips: LabelChips) -> dict[str, Any]:
    """The chips as training and validation split (validation on the drawn pixels: a best checkpoint)."""
    args = chips.datamodule_init_args()
    args["val_data_root"], args["val_label_data_root"] = (
        args["train_data_root"],
        args["train_label_data_root"],
    )
    return args


def teach_config(
    chips: LabelChips,
    scene: str | Path,
    class_names: Sequence[str],
    base_config: Mapping[str, Any] | None = None,
    initial_checkpoint: Path | None = None,
    preset: str = "Prithvi tiny + UPerNet",
    max_epochs: int = 5,
    batch_size: int = 4,
    accelerator: str = "cpu",
) -> dict[str, Any]:
    """The ``geoft fit`` config of one round.

    Without ``base_config``: ``preset`` on every band of the scene, normalised by the scene's statistics.
    With it (a segmentation run to start from, or the previous round): its model, bands and
    normalisation, the data paths replaced by the chips. ``initial_checkpoint``: start from these weights.
    """
    if base_config is None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}", hint=f"one of {', '.join(PRESETS)}")
        bands = band_names(scene)
        means, stds = scene_statistics(scene)
        data = DataChoice(
            root=str(chips.images.parent), paths=_chip_split(chips), class_names=list(class_names),
            bands=bands, means=means, stds=stds, ignore_index=IGNORE_INDEX, no_data_replace=0.0,
        )  # fmt: skip
        train = TrainChoice(max_epochs=max_epochs, batch_size=batch_size, accelerator=accelerator)
        config = build_config(data, PRESETS[preset], train)
    else:
        config = _from_base(base_config, chips, class_names, max_epochs)
    if initial_checkpoint is not None:
        trainer = config.setdefault("trainer", {})
        callbacks = [c for c in trainer.get("callbacks") or [] if c.get("class_path") != INITIAL_WEIGHTS]
        callbacks.append({"class_path": INITIAL_WEIGHTS, "init_args": {"ckpt_path": str(initial_checkpoint)}})
        trainer["callbacks"] = callbacks
    return config


def _from_base(
    base: Mapping[str, Any], chips: LabelChips, class_names: Sequence[str], max_epochs: int
) -> dict[str, Any]:
    config = copy.deepcopy(dict(base))
    for key in ("run_name", "ckpt_path"):
        config.pop(key, None)
    data = config.get("data") or {}
    model_args = (config.get("model") or {}).get("init_args") or {}
    run_classes = list(
        model_args.get("class_names") or (data.get("init_args") or {}).get("class_names") or []
    )
    if run_classes and run_classes != list(class_names):
        raise ConfigError(
            f"the run's classes are {', '.join(run_classes)}, the labels' {', '.join(class_names)}",
            hint="draw with the run's classes",
        )
    if not str(data.get("class_path", "")).endswith("GenericNonGeoSegmentationDataModule"):
        raise ConfigError(
            f"the run's data is {data.get('class_path')!r}; drawn labels train a GenericNonGeoSegmentationDataModule",
            hint="start from a segmentation run on GeoTIFF chips, or from a preset",
        )
    init = {k: v for k, v in (data.get("init_args") or {}).items() if not k.endswith(_SPLIT_KEYS)}
    init = {k: v for k, v in init.items() if k not in ("img_grep", "label_grep")}
    init.update(_chip_split(chips))
    data["init_args"] = init
    model_args["ignore_index"] = IGNORE_INDEX
    config["trainer"] = {**(config.get("trainer") or {}), "max_epochs": max_epochs}
    return config


def teach_runs(store: RunStore, scene: str | Path) -> list[RunRecord]:
    """The rounds trained on this scene's drawings, newest first."""
    tag = f"{TEACH_TAG}:{scene_key(scene)}"
    return [r for r in store.list() if tag in r.tags]


def start_round(
    runner: JobRunner,
    home: Path,
    scene: str | Path,
    class_names: Sequence[str],
    base_run: RunRecord | None = None,
    preset: str = "Prithvi tiny + UPerNet",
    max_epochs: int = 5,
) -> RunRecord:
    """Cut the chips of the saved shapes and submit a round; from the 2nd round on (or from
    ``base_run``) it starts from the previous run's best checkpoint."""
    from geoft.app.trained import best_checkpoint, run_config
    from geoft.datasets.drawn_labels import write_label_chips

    drawn = labels_path(home, scene)
    if not drawn.is_file():
        raise DataError(
            f"no shapes saved for {Path(scene).name}", hint="draw shapes of each class on the map"
        )
    previous = next((r for r in teach_runs(runner.store, scene) if r.folder.best() is not None), base_run)
    round_no = len(teach_runs(runner.store, scene)) + 1
    chips_dir = Path(home) / "labels" / f"{scene_key(scene)}_rounds" / f"round_{round_no}"
    chips = write_label_chips(
        scene, drawn, class_names, chips_dir, chip_size=CHIP_SIZE, ignore_index=IGNORE_INDEX
    )
    base = run_config(previous) if previous is not None else None
    ckpt = best_checkpoint(previous) if previous is not None else None
    config = teach_config(chips, scene, class_names, base, ckpt, preset=preset, max_epochs=max_epochs)
    name = f"teach-{scene_key(scene)}-{round_no}"
    return runner.submit(config, name, tags=[TEACH_TAG, f"{TEACH_TAG}:{scene_key(scene)}"])


def predict_round(run: RunRecord, scene: str | Path, uncertainty: str = "entropy") -> tuple[Path, Path]:
    """The whole scene predicted by a finished round: the class map and its uncertainty GeoTIFF."""
    from geoft.app.predict import predict_to_geotiff

    out = run.run_dir / "teach" / f"{scene_key(scene)}.tif"
    spread = out.with_name(f"{out.stem}_{uncertainty}{out.suffix}")
    if not (out.is_file() and spread.is_file()):  # a finished run's prediction never changes
        predict_to_geotiff(run, Path(scene), out, uncertainty=uncertainty)
    return out, spread


def finished_round(store: RunStore, scene: str | Path) -> RunRecord | None:
    """The newest completed round of this scene that saved a checkpoint."""
    from geoft.app.run_store import COMPLETED

    return next((r for r in teach_runs(store, scene) if r.status == COMPLETED and r.folder.best()), None)


def starting_runs(store: RunStore) -> list[RunRecord]:
    """Runs a first round may start from: segmentation on GeoTIFF chips, with a checkpoint."""
    from geoft.app.trained import run_config

    found = []
    for run in store.list():
        if run.folder.best() is None:
            continue
        try:
            data = run_config(run).get("data") or {}
        except (ConfigError, DataError, OSError):
            continue
        if str(data.get("class_path", "")).endswith("GenericNonGeoSegmentationDataModule"):
            found.append(run)
    return found


def run_classes(run: RunRecord) -> list[str]:
    """The class names a run was trained with."""
    from geoft.app.trained import run_config

    config = run_config(run)
    model_args = (config.get("model") or {}).get("init_args") or {}
    data_args = (config.get("data") or {}).get("init_args") or {}
    names = list(model_args.get("class_names") or data_args.get("class_names") or [])
    if len(names) < 2:
        raise ConfigError(f"run {run.id} names no classes", hint="start from a preset and name the classes")
    return names


def parse_class_names(text: str) -> list[str]:
    """Class names typed as ``a, b, c``: at least two, all different."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(
            f"class names {text!r}: give at least two different names", hint="e.g. not_water, water"
        )
    return names
