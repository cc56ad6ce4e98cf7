"""Shared fixtures. Tests use tiny models and chips so the whole suite runs on 2 CPU cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_data_root() -> Path | None:
    """``$GEOFT_REAL_DATA`` or ``../shared/data/real`` beside the repo, if present."""
    env = os.environ.get("GEOFT_REAL_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data" / "real"
    return root if root.is_dir() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip(
            "REAL DATA MISSING: set GEOFT_REAL_DATA or place ../shared/data/real beside the repo; "
            "tests on real Earth-observation samples are skipped",
        )
    return root


def cut_sen1floods11_tiles(real: Path, out: Path, tile: int = 256) -> Path:
    """The Sen1Floods11 sample chip cut into 2x2 tiles with the dataset's own names
    (``Spain_7370579_<i>_S2Hand.tif``, ``..._S1Hand.tif``, ``..._LabelHand.tif``) in one folder."""
    import rasterio
    from rasterio.windows import Window

    source = real / "sen1floods11_sample"
    out.mkdir(parents=True, exist_ok=True)
    for kind in ("S2Hand", "S1Hand", "LabelHand"):
        with rasterio.open(source / f"Spain_7370579_{kind}.tif") as src:
            for i, (row, col) in enumerate([(0, 0), (0, tile), (tile, 0), (tile, tile)]):
                window = Window(col, row, tile, tile)
                profile = {**src.profile, "width": tile, "height": tile}
                profile["transform"] = src.window_transform(window)
                profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None)
                with rasterio.open(out / f"Spain_7370579_{i}_{kind}.tif", "w", **profile) as dst:
                    dst.write(src.read(window=window))
                    dst.descriptions = src.descriptions
    return out


@pytest.fixture
def sen1floods11_tiles(real_data: Path, tmp_path: Path) -> Path:
    """Four Sen1Floods11 tiles with native names in a temporary folder (see :func:`cut_sen1floods11_tiles`)."""
    return cut_sen1floods11_tiles(real_data, tmp_path / "sen1floods11_tiles")


# make test hands whole files to two workers in collection order (xdist --dist loadfile). Collected in
# their usual order, a long file handed out late ran alone at the end; the longest files go first
# (longest first, as measured with --durations), so the two workers finish close together.
LONGEST_FIRST = (
    "tests/browser/test_browser_load.py",  # beside it, a file without a browser: its pages are its own
    "tests/tasks/test_task_detection_quality.py",
    "tests/browser/test_browser_real_journey.py",
    "tests/browser/test_browser_detection.py",
    "tests/browser/test_browser_reliability.py",
    "tests/browser/test_browser_demo.py",
    "tests/tasks/test_task_teach_app_real.py",
    "tests/browser/test_browser_sweep.py",
    "tests/browser/test_browser_pages.py",
    "tests/app/test_app_task_pages.py",
    "tests/tasks/test_task_drawn_labels_real.py",
    "tests/scaleout/test_scaleout_ddp_cpu.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path)).resolve().relative_to(REPO).as_posix()
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> None:
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))


def write_tiny_demo_workspace(root: Path, trainer: dict, absolute_roots: bool = False) -> Path:
    """Tiny demo data in ``root/data/demo`` and ``root/config.yaml``: configs/demo_prithvi_upernet.yaml
    shrunk to a 1-block Prithvi on 32-px chips, with ``trainer`` merged into its trainer section.

    ``absolute_roots`` writes the data roots as absolute paths (for jobs started from another folder).
    """
    import yaml

    from geoft.datasets.demo import generate_demo_dataset

    generate_demo_dataset(root / "data" / "demo", n_train=4, n_val=2, n_test=2, size=32, seed=1)
    config = yaml.safe_load((REPO / "configs" / "demo_prithvi_upernet.yaml").read_text())
    config["trainer"].update(
        log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False, **trainer
    )
    config["model"]["init_args"]["model_args"].update(
        backbone_depth=1, backbone_img_size=32, decoder_channels=16
    )
    config["model"]["init_args"]["tiled_inference_parameters"] = {"crop": 32, "stride": 24}
    data = config["data"]["init_args"]
    data["batch_size"] = 2
    if absolute_roots:
        for key, value in list(data.items()):
            if key.endswith("data_root"):
                data[key] = str(root / value)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


@pytest.fixture(scope="session")
def tiny_demo_workspace():
    """:func:`write_tiny_demo_workspace` (test modules cannot import conftest in importlib mode)."""
    return write_tiny_demo_workspace
