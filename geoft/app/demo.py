"""The one-click demo: generate the demo dataset, configure Prithvi tiny + UPerNet, train, predict."""

from __future__ import annotations

import fcntl
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoft.app.data_summary import (
    load_dataset_meta,
    summarize,
)
from geoft.app.forms import PRESETS, DataChoice, TrainChoice, build_config
from geoft.app.imagery import default_colors, parse_hex
from geoft.app.jobs import JobRunner
from geoft.app.run_store import RunRecord
from geoft.app.settings import AppSettings
from geoft.errors import DataError

DEMO_TAG = "demo"


def ensure_demo_dataset(settings: AppSettings) -> Path:
    """Generate the demo dataset once (sized by the ``GEOFT_DEMO_*`` settings); return its folder."""
    from geoft.datasets.demo import generate_demo_dataset

    out = settings.demo_dir
    if (out / "dataset.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # Two sessions may ask at once: the second waits, then finds the finished dataset.
    with open(out.parent / ".demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "dataset.json").is_file():
            if out.exists():  # an interrupted generation: the folder belongs to the app, start over
                shutil.rmtree(out)
            n_eval = max(2, settings.demo_chips // 4)
            generate_demo_dataset(
                out, n_train=settings.demo_chips, n_val=n_eval, n_test=n_eval, size=settings.demo_size
            )
    return out


def demo_config(settings: AppSettings, dataset: Path) -> dict[str, Any]:
    """A working config for the demo dataset: Prithvi tiny + UPerNet on 6 bands, few epochs, CPU-friendly."""
    from geoft.datasets.demo import load_demo_info

    info = load_demo_info(dataset)
    init = info.datamodule_init_args()
    owned = ("num_classes", "class_names", "dataset_bands", "means", "stds")
    data = DataChoice(
        root=str(dataset),
        paths={k: v for k, v in init.items() if k not in owned},
        class_names=list(info.class_names),
        bands=list(info.bands),
        means=init["means"],
        stds=init["stds"],
    )
    train = TrainChoice(max_epochs=settings.demo_epochs, batch_size=4, accelerator="cpu")
    return build_config(data, PRESETS["Prithvi tiny + UPerNet"], train)


# Measured with benchmarks/app_demo_click_to_map.py on this project's 2-core machine: a worker process
# starts, trains and predicts in about 20 s plus about 0.4 s per chip-epoch of 64x64 chips.
_STARTUP_S = 20.0
_CHIP_EPOCH_S = 0.4


def estimated_seconds(settings: AppSettings) -> float:
    """Click-to-map time of the demo on 2 CPU cores, from its size."""
    area = (settings.demo_size / 64) ** 2
    return _STARTUP_S + _CHIP_EPOCH_S * settings.demo_chips * settings.demo_epochs * area


def start_demo(settings: AppSettings, runner: JobRunner) -> RunRecord:
    """Generate (once), configure and submit the demo training job."""
    dataset = ensure_demo_dataset(settings)
    return runner.submit(demo_config(settings, dataset), "demo", tags=[DEMO_TAG], dataset_root=str(dataset))


@dataclass(frozen=True)
class DemoResult:
    """A predicted demo scene and what is needed to draw it."""

    image: Path
    truth: Path | None
    prediction: Path
    class_names: list[str]
    colors: list[tuple[int, int, int]]
    rgb_bands: list[int]


def demo_prediction(settings: AppSettings, run: RunRecord) -> DemoResult:
    """Predict the first validation chip of the demo dataset with the demo run (cached in the run folder)."""
    from geoft.app.predict import predict_to_geotiff

    dataset = settings.demo_dir
    summary = summarize(dataset)
    pairs = [p for p in summary.all_pairs() if p[0] in ("val", "test")] or summary.all_pairs()
    if not pairs:
        raise DataError(
            f"the demo dataset in {dataset} has no images", hint="delete the folder and run the demo again"
        )
    _split, image, truth = pairs[0]
    meta = load_dataset_meta(settings.home, dataset)
    names = list(meta.get("class_names") or [])
    colors = [parse_hex(c) if isinstance(c, str) else tuple(c) for c in meta.get("class_colors") or []]
    colors = (colors + default_colors(len(names)))[: len(names)]
    out = run.run_dir / "predictions" / f"{image.stem}_prediction.tif"
    if not out.is_file():
        predict_to_geotiff(run, image, out, class_colors=colors)
    return DemoResult(image, truth, out, names, colors, list(meta.get("rgb_indices") or [2, 1, 0]))


def demo_map(result: DemoResult, js_url: str, css_url: str, opacity: float, tiles: str | None = None) -> Any:
    """The offline map of a demo prediction: image, ground truth and prediction layers."""
    from geoft.app.maps import build_scene_map, read_for_display

    return build_scene_map(
        read_for_display(result.image),
        result.rgb_bands,
        js_url,
        css_url,
        prediction=read_for_display(result.prediction),
        truth=read_for_display(result.truth) if result.truth else None,
        class_names=result.class_names,
        colors=result.colors,
        opacity=opacity,
        tiles=tiles,
    )
