"""A tiny trained detection run in an app home (as the app records runs), for the map and similarity tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from geoft.datasets.detection_demo import generate_detection_chips

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "det1"


def train_detection_run(home: Path) -> Path:
    """Generate 32 px chips under ``home/data/det``, train Faster R-CNN (ResNet-18) two steps, and record
    the run; returns the dataset folder."""
    import lightning.pytorch as pl

    from geoft.app.run_store import COMPLETED, RunStore
    from geoft.app.settings import load_settings
    from geoft.registry import import_object

    settings = load_settings({"GEOFT_HOME": str(home)})
    settings.ensure_dirs()
    data = settings.data_roots[0] / "det"
    generate_detection_chips(data / "train", n=4, size=32, max_objects=2, object_size=(6, 12), seed=1)
    generate_detection_chips(data / "val", n=4, size=32, max_objects=2, object_size=(6, 12), seed=2)
    config = yaml.safe_load((REPO / "configs" / "detection_faster_rcnn.yaml").read_text())
    init = config["data"]["init_args"]
    for split in ("train", "val", "test"):
        folder = "val" if split == "test" else split
        init[f"{split}_data_root"] = str(data / folder / "images")
        init[f"{split}_label_data_root"] = str(data / folder / "labels")
    init["batch_size"] = 2
    config["model"]["class_path"] = "geoft.tasks.ObjectDetectionTask"
    config["model"]["init_args"]["model_args"]["framework_box_score_thresh"] = (
        0.0  # an untrained model's boxes
    )
    dm = import_object("geoft.datamodules.GenericObjectDetectionDataModule")(**init)
    task = import_object(config["model"]["class_path"])(**config["model"]["init_args"])
    trainer = pl.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(task, dm)
    run_dir = settings.runs_root / RUN_ID
    trainer.save_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "app.json").write_text(json.dumps({"dataset_root": str(data)}))
    RunStore(settings.store_path).add(RUN_ID, "det", run_dir, "cpu", status=COMPLETED)
    return data


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Point the app (the page an AppTest runs) at ``home``, with no overrides and no login."""
    monkeypatch.setenv("GEOFT_HOME", str(home))
    for name in ("GEOFT_DATA_ROOTS", "GEOFT_RUNS_ROOT", "GEOFT_APP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEOFT_BASEMAP_URL", "none")  # no base-map probe leaves the machine
