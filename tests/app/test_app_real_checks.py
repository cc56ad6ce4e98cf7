"""Real Sen1Floods11 tiles: their native names pair, a corrupt file and config typos each get one clear
line, and nothing is queued before the config passes `geoft fit`'s own parser and classes."""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path

import pytest

from geoft.app.config_check import check_submission, one_line
from geoft.app.data_summary import datamodule_paths, summarize
from geoft.app.forms import DataChoice, ModelChoice, TrainChoice, build_config
from geoft.app.run_store import RunStore
from geoft.app.uploads import extract_dataset_zip

pytestmark = pytest.mark.real_data
AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
REPO = Path(__file__).resolve().parents[2]
S2 = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def _zip(folder: Path) -> io.BytesIO:
    """The folder as an uploaded zip (a file object, as Streamlit's UploadedFile is)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}")
    return buf


def _uploaded_with_corrupt_file(tiles: Path, home: Path) -> Path:
    (tiles / "Spain_7370579_9_S2Hand.tif").write_bytes(b"II*\x00" + b"\x13" * 600)  # a truncated TIFF
    (tiles / "Spain_7370579_9_LabelHand.tif").write_bytes(
        (tiles / "Spain_7370579_0_LabelHand.tif").read_bytes()
    )
    return extract_dataset_zip(_zip(tiles), home / "data" / "uploads", tiles.name)


def _config(root: Path) -> dict:
    summary = summarize(root)
    data = DataChoice(
        root=str(root),
        paths=datamodule_paths(summary),
        class_names=["not water", "water"],
        bands=S2,
        dataset_bands=[
            "COASTAL_AEROSOL",
            "BLUE",
            "GREEN",
            "RED",
            "RED_EDGE_1",
            "RED_EDGE_2",
            "RED_EDGE_3",
            "NIR_BROAD",
            "NIR_NARROW",
            "WATER_VAPOR",
            "CIRRUS",
            "SWIR_1",
            "SWIR_2",
        ],  # fmt: skip
        ignore_index=-1,
    )
    return build_config(data, ModelChoice(), TrainChoice(max_epochs=1))


def test_native_names_pair_and_sentinel2_bands_are_named(sen1floods11_tiles: Path):
    summary = summarize(sen1floods11_tiles)
    assert (summary.pairing.image_suffix, summary.pairing.label_suffix) == ("_S2Hand", "_LabelHand")
    assert summary.chip_count == 4 and summary.problems == []
    assert all(img.name.replace("_S2Hand", "_LabelHand") == lbl.name for _s, img, lbl in summary.all_pairs())
    from geoft.app.data_summary import canonical_band_names, default_rgb, suggested_ignore_index

    names = canonical_band_names(summary.band_names)
    assert [summary.band_names[i] for i in default_rgb(names)] == ["B4", "B3", "B2"]
    assert suggested_ignore_index(summary.class_histogram) == -1
    # stated suffixes win over detection; wrong ones explain the rule in one line
    wrong = summarize(sen1floods11_tiles, image_suffix="_S2", label_suffix="_Label")
    assert wrong.chip_count == 0
    assert any("pair when the rest of their names is the same" in p for p in wrong.problems)


def test_corrupt_file_is_one_line_and_not_a_chip(sen1floods11_tiles: Path, home: Path):
    root = _uploaded_with_corrupt_file(sen1floods11_tiles, home)
    assert root == home / "data" / "uploads" / sen1floods11_tiles.name  # not uploads/x/x
    at = AppTest.from_file(str(REPO / "pages/1_Data.py"), default_timeout=120)
    at.session_state["geoft_dataset"] = str(root)
    at.run()
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert len(errors) == 1 and "Spain\\_7370579\\_9\\_S2Hand.tif cannot be read" in errors[0], errors
    assert "\n" not in errors[0] and "Traceback" not in errors[0] and "validate-data" not in errors[0]
    assert {m.label: m.value for m in at.metric}["Chips"] == "4"
    # the check before queueing names the same file, once
    problems = check_submission(_config(root), [home / "data"]).problems
    assert len(problems) == 1 and "Spain_7370579_9_S2Hand.tif is not a readable raster" in problems[0]


def test_typos_are_one_line_each_with_a_suggestion_and_nothing_is_queued(
    sen1floods11_tiles: Path, home: Path
):
    root = extract_dataset_zip(_zip(sen1floods11_tiles), home / "data" / "uploads", "s1f")
    bad = copy.deepcopy(_config(root))
    bad["model"]["init_args"]["ignore_indx"] = bad["model"]["init_args"].pop("ignore_index")
    bad["trainer"]["max_epoch"] = bad["trainer"].pop("max_epochs")
    problems = check_submission(bad, [home / "data", home / "runs"]).problems
    assert problems == [
        "trainer.max_epoch: unknown key; did you mean trainer.max_epochs?",
        "model.init_args.ignore_indx: unknown key; did you mean model.init_args.ignore_index?",
    ]
    at = AppTest.from_file(str(REPO / "pages/3_Train.py"), default_timeout=120)
    at.session_state["geoft_config"] = bad
    at.run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert any("ignore\\_indx: unknown key; did you mean" in e for e in errors), errors
    assert all("\n" not in e for e in errors)
    assert RunStore(home / "runs" / "runs.sqlite").list() == []


def test_errors_of_the_cli_classes_become_one_line(sen1floods11_tiles: Path, home: Path):
    root = extract_dataset_zip(_zip(sen1floods11_tiles), home / "data" / "uploads", "s1f")
    config = _config(root)
    wrong_type = copy.deepcopy(config)
    wrong_type["data"]["init_args"]["batch_size"] = "four"
    wrong_weights = copy.deepcopy(config)
    wrong_weights["model"]["init_args"]["model_args"]["backbone_pretrained"] = True
    roots = [home / "data"]
    (type_problem,) = check_submission(wrong_type, roots).problems
    assert type_problem.startswith("data.init_args.batch_size:") and "Given value" not in type_problem
    (weights_problem,) = check_submission(wrong_weights, roots).problems
    assert weights_problem.startswith("model: prithvi_eo_tiny has no published weights")
    assert (
        one_line(ValueError('Parser key "data":\n  Expected an int\n  Given value: {...}'))
        == "data: Expected an int"
    )
