"""The benchmark harness: alternation, medians, advantage, failures, output; startup's geoft side."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import harness, startup  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    RESULT_MARKER,
    BenchmarkFailure,
    Case,
    Metric,
    advantage,
    compare,
    format_table,
    median_of,
    parse_worker_output,
    run_alternating,
    write_results,
)


def _counter(log: list[str], side: str, values: list[float]):
    calls = iter(values)

    def measure() -> dict[str, float]:
        log.append(side)
        return {"wall_s": next(calls)}

    return measure


def test_runs_alternate_and_warmup_is_discarded() -> None:
    log: list[str] = []
    results = run_alternating(
        {
            "geoft": _counter(log, "geoft", [100.0, 1.0, 2.0, 3.0]),
            "reference": _counter(log, "reference", [200.0, 10.0, 30.0, 20.0]),
        },
        repeats=3,
        warmup=1,
    )
    assert log == ["geoft", "reference"] * 4
    assert [s["wall_s"] for s in results["geoft"].samples] == [1.0, 2.0, 3.0]
    assert [s["wall_s"] for s in results["reference"].samples] == [10.0, 30.0, 20.0]


def test_medians_and_advantage_follow_the_metric_direction() -> None:
    log: list[str] = []
    case = Case(
        "c",
        {
            "geoft": _counter(log, "geoft", [1.0, 5.0, 2.0]),
            "reference": _counter(log, "reference", [9.0, 4.0, 8.0]),
        },
        {"wall_s": Metric("s", higher_is_better=False)},
    )
    rows = compare("bench", case, run_alternating(case.measures, repeats=3))
    (row,) = rows
    assert (row.geoft, row.reference) == (2.0, 8.0)
    assert row.advantage == pytest.approx(4.0)  # geoft takes a quarter of the time
    assert advantage(2.0, 8.0, higher_is_better=True) == pytest.approx(0.25)
    assert advantage(None, 8.0, higher_is_better=True) is None
    assert median_of([{"a": 1.0}, {"b": 2.0}, {"a": 3.0}], "a") == 2.0
    assert median_of([], "a") is None


def test_informational_metrics_get_no_advantage() -> None:
    case = Case(
        "c",
        {"geoft": lambda: {"n": 4.0}, "reference": lambda: {"n": 1500.0}},
        {"n": Metric("names", higher_is_better=True, informational=True)},
    )
    (row,) = compare("bench", case, run_alternating(case.measures, repeats=1))
    assert row.advantage is None and row.geoft == 4.0 and row.reference == 1500.0


def test_a_failing_side_is_recorded_and_not_retried() -> None:
    calls = {"reference": 0}

    def broken() -> dict[str, float]:
        calls["reference"] += 1
        raise BenchmarkFailure("reference environment missing")

    log: list[str] = []
    results = run_alternating(
        {"geoft": _counter(log, "geoft", [1.0, 2.0, 3.0]), "reference": broken}, repeats=3
    )
    assert calls["reference"] == 1
    assert len(results["geoft"].samples) == 3
    assert results["reference"].errors == ["reference environment missing"]
    case = Case("c", {}, {"wall_s": Metric("s", higher_is_better=False)})
    (row,) = compare("bench", case, results)
    assert row.reference is None and row.advantage is None
    assert "reference" in row.errors
    assert "failed: reference" in format_table([row])


def test_repeats_must_be_positive() -> None:
    with pytest.raises(ValueError, match="repeats"):
        run_alternating({"geoft": lambda: {"x": 1.0}}, repeats=0)


def test_worker_output_parsing() -> None:
    out = "noise\n" + RESULT_MARKER + json.dumps({"wall_s": 1.5}) + "\nmore noise\n"
    assert parse_worker_output(out) == {"wall_s": 1.5}
    with pytest.raises(BenchmarkFailure, match="no result line"):
        parse_worker_output("just logs\n")


def test_results_are_written_as_json_and_markdown(tmp_path: Path) -> None:
    case = Case(
        "c",
        {"geoft": lambda: {"wall_s": 1.0}, "reference": lambda: {"wall_s": 3.0}},
        {"wall_s": Metric("s", higher_is_better=False)},
    )
    rows = compare("bench", case, run_alternating(case.measures, repeats=1))
    path = write_results(rows, {"command": "test", "threads": 2, "machine": {}}, tmp_path)
    data = json.loads(path.read_text())
    assert data["rows"][0]["advantage"] == pytest.approx(3.0)
    assert json.loads((tmp_path / "latest.json").read_text()) == data
    table = (tmp_path / "latest.md").read_text()
    assert "| bench | c | wall_s [s] ↓ | 1.00 | 3.00 | 3.00× | 1/1 |" in table


def test_missing_reference_environment_says_how_to_create_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOFT_BENCH_REF_PYTHON", "/nonexistent/python")
    message = harness.side_available("reference")
    assert message is not None and "setup_reference.sh" in message
    with pytest.raises(BenchmarkFailure, match="setup_reference.sh"):
        harness.run_worker("reference", "harness", "environment")


def test_startup_geoft_side_runs_in_a_fresh_process() -> None:
    sample = startup.timed_snippet("geoft", startup.IMPORT_CODE["geoft"])
    assert 0 < sample["import_s"] < sample["process_s"]
    listed = startup.timed_snippet("geoft", startup.LIST_CODE["geoft"])
    assert listed["names"] >= 1
    assert startup.cli_help("geoft")["wall_s"] > 0


def test_worker_runs_in_the_geoft_environment_with_pinned_threads() -> None:
    env = harness.run_worker("geoft", "harness", "environment", threads=1, timeout_s=300)
    assert env["torch_threads"] == 1
    assert env["geoft"] is not None and env["torch"]


def test_generated_chips_and_scenes_are_deterministic(tmp_path: Path) -> None:
    import numpy as np
    import rasterio

    from benchmarks.scenes import ChipSet, make_chips, make_scene

    a = make_chips(tmp_path / "a", n_train=2, n_val=1, size=32, bands=3, num_classes=3, seed=1)
    b = make_chips(tmp_path / "b", n_train=2, n_val=1, size=32, bands=3, num_classes=3, seed=1)
    images = sorted(a.images("train").glob(ChipSet.img_glob))
    labels = sorted(a.labels("train").glob(ChipSet.label_glob))
    assert [p.name for p in images] == ["chip_00000_img.tif", "chip_00001_img.tif"]
    assert len(labels) == 2 and len(list(a.images("val").glob(ChipSet.img_glob))) == 1
    with rasterio.open(images[1]) as src, rasterio.open(b.images("train") / images[1].name) as other:
        assert src.count == 3 and src.crs is not None
        assert np.array_equal(src.read(), other.read())
    with rasterio.open(labels[0]) as src:
        assert set(np.unique(src.read())) <= {0, 1, 2}
    scene = make_scene(tmp_path / "scene.tif", 80, bands=2, block=32)
    with rasterio.open(scene) as src:
        assert (src.count, src.height, src.width) == (2, 80, 80)
        assert 0 <= src.read().min() and src.read().max() <= 10_000
