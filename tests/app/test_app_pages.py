"""AppTest (no browser) for every page, including error paths."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geoft.app.run_store import FAILED, RunStore

REPO = Path(__file__).resolve().parents[2]
AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def make_dataset(root: Path, n: int = 3, bands: int = 6, size: int = 32, drop_label: bool = False) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            profile = dict(
                driver="GTiff",
                width=size,
                height=size,
                crs="EPSG:32633",
                transform=from_origin(400000, 5000000 - i * 1000, 30, 30),
            )
            with rasterio.open(
                root / split / "images" / f"chip{i}.tif", "w", count=bands, dtype="float32", **profile
            ) as dst:
                dst.write(rng.uniform(0, 1, (bands, size, size)).astype(np.float32))
            if drop_label and split == "val" and i == 0:
                continue
            with rasterio.open(
                root / split / "labels" / f"chip{i}_mask.tif", "w", count=1, dtype="uint8", **profile
            ) as dst:
                dst.write((rng.uniform(0, 1, (1, size, size)) > 0.5).astype(np.uint8))
    return root


def run_page(name: str, session: dict | None = None, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(REPO / name), default_timeout=timeout)
    for k, v in (session or {}).items():
        at.session_state[k] = v
    return at.run()


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def test_home_offers_the_demo(home: Path):
    at = run_page("app.py")
    assert not at.exception
    assert any(b.label == "Run the demo" for b in at.button)
    assert (REPO / "static" / "leaflet" / "leaflet.js").is_file()  # Leaflet served by the app itself


def test_password_gate(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GEOFT_APP_PASSWORD", "s3cret")
    at = run_page("app.py")
    assert not any(b.label == "Run the demo" for b in at.button)
    at.text_input(key="geoft_login_password").input("wrong")
    at.button[0].click().run()
    assert "Wrong password" in texts(at, "error")
    at.text_input(key="geoft_login_password").input("s3cret")
    at.button[0].click().run()
    assert "Type your name" in texts(at, "error")  # runs are recorded under it: no login without one
    assert not any(b.label == "Run the demo" for b in at.button)
    at.text_input(key="geoft_login_name").input("  Alice  ")
    at.button[0].click().run()
    assert any(b.label == "Run the demo" for b in at.button)
    assert at.session_state["geoft_user"] == "Alice"


def test_data_page_refuses_folder_outside_roots(home: Path, tmp_path: Path):
    at = run_page("pages/1_Data.py")
    assert not at.exception
    at.text_input(key="data_typed").input(str(tmp_path))  # the parent of the data root
    at.button(key="data_use").click().run()
    assert "outside the folders this app may use" in texts(at, "error")
    at.text_input(key="data_typed").input("../../etc")
    at.button(key="data_use").click().run()
    assert "outside the folders" in texts(at, "error")
    assert not at.exception


def test_data_page_summary_gallery_and_problems(home: Path):
    make_dataset(home / "data" / "fields", drop_label=True)
    at = run_page("pages/1_Data.py")
    at.text_input(key="data_typed").input("fields")
    at.button(key="data_use").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Chips"] == "5" and metrics["Bands"] == "6" and metrics["Size"] == "32×32"
    assert "EPSG:32633" in texts(at, "markdown")
    assert "val: 1 image(s) have no label" in texts(at, "error")
    assert len(at.get("image")) == 10  # the gallery: 5 paired chips, each with its label
    at.button(key="data_stats").click().run()
    assert not at.exception
    meta_files = list((home / "datasets").glob("*.json"))
    stats = json.loads(meta_files[0].read_text())["statistics"]
    train = np.stack(
        [
            rasterio.open(p).read()
            for p in sorted((home / "data" / "fields" / "train" / "images").glob("*.tif"))
        ]
    )
    assert stats["means"] == pytest.approx(train.mean(axis=(0, 2, 3)), abs=1e-5)
    assert stats["stds"] == pytest.approx(train.std(axis=(0, 2, 3)), abs=1e-5)


def test_data_page_checks_every_file_and_lists_each_problem(home: Path):
    root = make_dataset(home / "data" / "fields")
    at = run_page("pages/1_Data.py")
    at.text_input(key="data_typed").input("fields")
    at.button(key="data_use").click().run()
    at.button(key="data_check").click().run()
    assert not at.exception, at.exception
    assert "all 12 files OK" in texts(at, "success")
    stats = json.loads(next((home / "datasets").glob("*.json")).read_text())["statistics"]
    assert len(stats["means"]) == 6  # the check's read of the training files gave the statistics
    bad = root / "train" / "images" / "chip1.tif"
    bad.write_bytes(bad.read_bytes()[:600])  # truncated: the header opens, the pixels do not
    at.button(key="data_check").click().run()
    assert not at.exception, at.exception
    assert "12 files read: 1 problem" in texts(at, "error")
    (table,) = [d for d in at.dataframe if "split" in d.value.columns]
    assert table.value["split"].tolist() == ["train"] and table.value["file"].tolist() == [
        "train/images/chip1.tif"
    ]
    assert "Traceback" not in texts(at, "error") + str(table.value["problem"][0])


def test_model_page_builds_config_and_checks_model(home: Path):
    at = run_page("pages/2_Model.py", timeout=120)
    assert not at.exception, at.exception
    assert "UperNetDecoder" in texts(at, "code")
    at.button(key="model_check").click().run()
    assert not at.exception
    assert "parameters" in texts(at, "success"), texts(at, "error")


def test_model_page_bad_classes_shows_error(home: Path):
    at = run_page("pages/2_Model.py")
    at.text_input(key="model_classes").input("only-one").run()
    assert "at least two classes" in texts(at, "error")
    assert not at.exception


def test_train_page_refuses_bad_config(home: Path):
    bad = {
        "data": {"class_path": "os.system"},
        "model": {"class_path": "geoft.tasks.SemanticSegmentationTask"},
    }
    at = run_page("pages/3_Train.py", {"geoft_config": bad})
    at.button[0].click().run()
    assert "outside the allowed packages" in texts(at, "error")
    assert RunStore(home / "runs" / "runs.sqlite").list() == []


def _failed_run(home: Path) -> str:
    store = RunStore(home / "runs" / "runs.sqlite")
    run_dir = home / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("trainer: {max_epochs: 2}\n")
    (run_dir / "train.log").write_text("Traceback (most recent call last):\nValueError: boom in epoch 1\n")
    (run_dir / "metrics.jsonl").write_text(
        '{"epoch": 0, "step": 0, "train/loss": 1.0}\n{"epoch": 0, "step": 1, "val/mIoU": 0.5, "val/loss": 0.9}\n'
    )
    (run_dir / "logs").mkdir()
    (run_dir / "logs" / "confusion_matrices.json").write_text(
        json.dumps({"val": {"epoch": 0, "class_names": ["land", "water"], "matrix": [[5, 1], [2, 6]]}})
    )
    store.add("r1", "broken", run_dir, "cpu", status=FAILED)
    store.update("r1", error="ValueError: boom in epoch 1", started=time.time() - 5, finished=time.time())
    return "r1"


def test_train_page_shows_failed_job_plainly(home: Path):
    _failed_run(home)
    at = run_page("pages/3_Train.py")
    assert not at.exception
    assert "boom in epoch 1" in texts(at, "error")
    assert any(b.label == "Resume" for b in at.button)


def test_runs_page_history_scores_and_delete(home: Path):
    _failed_run(home)
    at = run_page("pages/4_Runs.py")
    assert not at.exception, at.exception
    frames = [d.value for d in at.dataframe]
    assert any("broken" in f.to_string() for f in frames)
    assert any("IoU" in f.columns for f in frames)
    at.checkbox(key="confirm-del-r1").check().run()
    next(b for b in at.button if b.label == "Delete run").click().run()
    assert not at.exception
    assert RunStore(home / "runs" / "runs.sqlite").list() == []


def test_runs_and_predict_pages_empty(home: Path):
    for page in ("pages/4_Runs.py", "pages/5_Predict.py"):
        at = run_page(page)
        assert not at.exception
        assert "No " in texts(at, "info")


def test_exposed_server_without_password_warns_loudly(home: Path):
    from streamlit import config

    old = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = run_page("app.py")
    finally:
        config.set_option("server.address", old)
    assert "reachable from other machines" in texts(at, "warning")
    at = run_page("app.py")
    assert "reachable from other machines" not in texts(at, "warning")


def _error_script() -> None:
    from geoft.app.ui import guarded
    from geoft.errors import DataError

    with guarded():
        raise DataError("the mask has 3 bands", hint="save masks with one band")
    with guarded():
        raise ValueError("kaboom")


def test_errors_are_messages_not_tracebacks():
    at = AppTest.from_function(_error_script).run()
    assert not at.exception
    errors = texts(at, "error")
    assert "the mask has 3 bands" in errors and "save masks with one band" in errors
    assert "Something unexpected went wrong: ValueError: kaboom" in errors
    assert at.expander[0].label.startswith("Details")


def test_predict_page_broken_checkpoint_is_a_message(home: Path):
    data = make_dataset(home / "data" / "fields")
    store = RunStore(home / "runs" / "runs.sqlite")
    run_dir = home / "runs" / "r2"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best-epoch=00.ckpt").write_bytes(b"not a checkpoint")
    config = {
        "data": {
            "class_path": "geoft.datamodules.GenericNonGeoSegmentationDataModule",
            "init_args": {
                "num_classes": 2,
                "val_data_root": str(data / "val" / "images"),
                "val_label_data_root": str(data / "val" / "labels"),
                "img_grep": "*.tif",
                "label_grep": "*_mask.tif",
                "means": [0.5] * 6,
                "stds": [0.3] * 6,
            },
        },
        "model": {
            "class_path": "geoft.tasks.SemanticSegmentationTask",
            "init_args": {"class_names": ["a", "b"]},
        },
    }
    import yaml

    (run_dir / "submitted_config.yaml").write_text(yaml.safe_dump(config))
    store.add("r2", "broken-ckpt", run_dir, "cpu", status="completed")
    at = run_page("pages/5_Predict.py")
    assert not at.exception, at.exception
    assert "val · chip0.tif" in [str(o) for o in at.selectbox(key="pred_chip").options]
    at.button(key="pred_go").click().run()
    assert not at.exception
    assert "checkpoint" in texts(at, "error").lower()
    assert "Traceback" not in texts(at, "error")
    assert "Something unexpected" not in texts(at, "error"), texts(at, "error")  # a CheckpointError, plainly
