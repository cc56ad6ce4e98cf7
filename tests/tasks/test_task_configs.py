"""The worked configs of docs/tasks/ run with `geoft fit` for one epoch on tiny demo data (the
embeddings one with `geoft predict`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from geoft.cli import main
from geoft.datasets.demo import generate_demo_dataset, write_class_fraction_labels

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("configs")
    generate_demo_dataset(root / "data" / "demo", n_train=4, n_val=2, n_test=2, size=32, seed=3)
    write_class_fraction_labels(root / "data" / "demo")
    return root


def _shrunk(name: str, root: Path) -> Path:
    """The config, with absolute data roots, a 1-block backbone on 32-px chips and one short epoch."""
    config = yaml.safe_load((REPO / "configs" / name).read_text())
    config["trainer"].update(
        max_epochs=1,
        accelerator="cpu",
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root / "runs"),
    )
    init = config["model"]["init_args"]
    args = init.get("model_args") or init
    for key in ("backbone_depth", "depth"):
        if key in args or key == "backbone_depth" and "backbone" in args:
            args[key] = 1
    for key in ("backbone_img_size", "img_size"):
        if key in args:
            args[key] = 32
    data = config["data"]["init_args"]
    data["batch_size"] = 2
    for key, value in list(data.items()):
        if (key.endswith("data_root") or key.endswith("labels_file")) and isinstance(value, str):
            data[key] = str(root / value)
    if "output_dir" in init:
        init["output_dir"] = str(root / init["output_dir"])
    path = root / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize("name", ["demo_scalar_regression.yaml", "demo_reconstruction.yaml"])
def test_worked_config_fits_one_epoch(name: str, demo_root: Path) -> None:
    run = name.removesuffix(".yaml")
    assert main(["fit", "-c", str(_shrunk(name, demo_root)), "--run_name", run]) == 0
    assert (demo_root / "runs" / run / "checkpoints" / "last.ckpt").is_file()
    if name == "demo_reconstruction.yaml":  # the adapted encoder, ready for backbone_ckpt_path
        assert (demo_root / "runs" / run / "encoder.pt").is_file()


def test_embeddings_config_predicts(demo_root: Path) -> None:
    path = _shrunk("demo_embeddings.yaml", demo_root)
    assert main(["predict", "-c", str(path), "--run_name", "embeddings"]) == 0
    import geopandas as gpd

    frame = gpd.read_parquet(demo_root / "embeddings" / "embeddings.parquet")
    assert len(frame) == 2 and frame.crs is not None
