"""The run folder's layout: naming, checkpoints, metrics and confusion files, events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geoft.errors import ConfigError
from geoft.runs import RunDir, make_run_dir
from geoft.runs.events import JsonlWriter


def test_run_dirs_are_unique_and_names_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOFT_RUN_DIR", raising=False)
    a = make_run_dir(tmp_path, None, "fit")
    b = make_run_dir(tmp_path, None, "fit")
    assert a != b and a.is_dir() and b.is_dir() and a.name.endswith("-fit")
    assert make_run_dir(tmp_path, "mine", "test") == (tmp_path / "mine").resolve()
    with pytest.raises(ConfigError, match="plain folder name"):
        make_run_dir(tmp_path, "../escape", "fit")


def test_explicit_run_dir_is_used_as_it_is_and_empty_ones_go(tmp_path: Path, fresh_env: None) -> None:
    run = RunDir.at(tmp_path / "a" / "b")
    assert run.path == (tmp_path / "a" / "b").resolve() and run.path.is_dir()
    run.remove_if_empty()
    assert not run.path.exists()
    kept = RunDir.at(tmp_path / "kept")
    kept.config.write_text("x: 1\n")
    kept.remove_if_empty()
    assert kept.config.is_file()


def test_best_and_last_checkpoints(trained_folder: RunDir, tmp_path: Path) -> None:
    assert trained_folder.best() == trained_folder.checkpoints_dir / "best-epoch=01.ckpt"
    assert trained_folder.last() == trained_folder.checkpoints_dir / "last.ckpt"
    assert trained_folder.checkpoints()[0].name == "last.ckpt"  # newest first
    (trained_folder.checkpoints_dir / "best-epoch=01.ckpt").unlink()
    assert trained_folder.best() == trained_folder.checkpoints_dir / "last.ckpt"  # newest when no best
    empty = RunDir(tmp_path / "empty")
    assert empty.best() is None and empty.last() is None and empty.metrics_file() is None


def test_metrics_and_confusion_files_are_found_below_the_folder(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    nested = tmp_path / "test" / RunDir.CONFUSION
    nested.parent.mkdir()
    nested.write_text("{}")
    assert run.confusion_file() == nested
    (tmp_path / "test" / RunDir.METRICS).write_text("")
    assert run.metrics_file() == tmp_path / "test" / RunDir.METRICS
    run.metrics.write_text("")
    assert run.metrics_file() == run.metrics


def test_end_event_of_the_latest_attempt_only(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    writer = JsonlWriter(run.metrics)
    writer.write("start", stage="fit")
    writer.write("end", stage="fit", status="failed", error="ValueError: first", message="ValueError: first")
    offset = run.metrics_size()
    assert run.end()["error"] == "ValueError: first"
    assert run.end(offset) is None  # a resumed attempt that wrote nothing yet
    writer.write("metrics", stage="train", metrics={"train/loss": 1.0})
    assert [e["event"] for e in run.events()] == ["start", "end"]
    writer.write("end", stage="fit", status="finished", error=None)
    with open(run.metrics, "a") as fh:
        fh.write('{"event": "end", "sta')  # half a line (a reader racing the writer): skipped
    assert run.end(offset)["status"] == "finished"
    assert json.loads(run.metrics.read_text().splitlines()[0])["event"] == "start"


def test_a_checkpoint_removed_while_listed_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The training job deletes the previous best checkpoint while the app lists the folder."""
    run = RunDir.at(tmp_path / "run")
    kept = run.checkpoints_dir / "last.ckpt"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"x")
    gone = run.checkpoints_dir / "epoch=0.ckpt"  # listed, then removed before its stat
    listed = [gone, kept]
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: iter(listed))
    assert run.checkpoints() == [kept]
    assert run.best() == kept and run.last() == kept

    from geoft.app.jobs import checkpoint_sizes

    assert checkpoint_sizes(run.path) == [(kept, 1)]
