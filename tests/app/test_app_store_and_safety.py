"""Run store under concurrent writers; path confinement; zip-slip and zip bombs; config safety; auth."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from geoft.app.auth import is_local_address, password_matches
from geoft.app.config_safety import check_class_paths
from geoft.app.paths import PathNotAllowedError, confine, list_subdirs
from geoft.app.run_store import RunStore
from geoft.app.settings import load_settings
from geoft.app.uploads import UnsafeArchiveError, ZipLimits, extract_zip, save_files
from geoft.errors import ConfigError, GeoftError

WRITER = """
import os, sys
from pathlib import Path
from geoft.app.run_store import RunStore
db, worker, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = RunStore(db, busy_timeout_s=10)
for i in range(n):
    run_id = f"w{worker}-{i}"
    store.add(run_id, run_id, db.parent / run_id, "cpu")
    store.update(run_id, status="running", pid=os.getpid())
    store.update(run_id, status="completed", best_metrics={"val/mIoU": i / n})
"""


def test_run_store_several_processes_writing(tmp_path: Path):
    db = tmp_path / "runs.sqlite"
    RunStore(db)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(w), "25"]) for w in range(4)]
    for p in procs:
        assert p.wait(120) == 0
    runs = RunStore(db).list()
    assert len(runs) == 100
    assert {r.status for r in runs} == {"completed"}
    with RunStore(db).connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_run_store_rejects_unknown_fields_and_ids(tmp_path: Path):
    store = RunStore(tmp_path / "r.sqlite")
    store.add("a", "a", tmp_path / "a", "cpu")
    with pytest.raises(ConfigError, match="unknown run-store fields"):
        store.update("a", colour="red")
    with pytest.raises(ConfigError, match="already exists"):
        store.add("a", "a", tmp_path / "a", "cpu")
    with pytest.raises(ConfigError, match="no run with id"):
        store.get("nope")


def test_confine_blocks_dotdot_absolute_and_symlink_escapes(tmp_path: Path):
    root = tmp_path / "data"
    (root / "set" / "images").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert confine("set/images", [root]) == (root / "set" / "images").resolve()
    assert confine(root / "set", [root]) == (root / "set").resolve()
    for bad in ("../secret", str(outside), "link", "set/../../secret", "/etc/passwd"):
        with pytest.raises(PathNotAllowedError, match="outside the folders"):
            confine(bad, [root])
    with pytest.raises(PathNotAllowedError, match="does not exist"):
        confine("missing", [root], must_exist=True)
    assert [p.name for p in list_subdirs(root, [root])] == ["set"]  # the escaping link is hidden


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc")
    return buf.getvalue()


def test_zip_extracts_normal_archive(tmp_path: Path):
    files = extract_zip(_zip({"ds/images/a.tif": b"1", "ds/labels/a.tif": b"2"}), tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == [
        "ds/images/a.tif",
        "ds/labels/a.tif",
    ]


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt", "C:/evil.txt"])
def test_zip_slip_is_refused(tmp_path: Path, name: str):
    with pytest.raises(UnsafeArchiveError, match="zip-slip"):
        extract_zip(_zip({"ok.txt": b"1", name: b"x"}), tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "ok.txt").exists()  # nothing extracted before the check


def test_zip_symlink_and_bomb_and_limits_refused(tmp_path: Path):
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_zip(_zip({"a": b"1"}, symlink="link"), tmp_path / "o1")
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        extract_zip(_zip({"zeros.bin": b"\0" * 5_000_000}), tmp_path / "o2")
    with pytest.raises(UnsafeArchiveError, match="entries"):
        extract_zip(_zip({f"f{i}": b"1" for i in range(5)}), tmp_path / "o3", ZipLimits(max_entries=4))
    with pytest.raises(UnsafeArchiveError, match="expands to"):
        extract_zip(_zip({"big": os.urandom(2000)}), tmp_path / "o4", ZipLimits(max_total_bytes=1000))
    with pytest.raises(UnsafeArchiveError, match="not a valid zip"):
        extract_zip(b"not a zip", tmp_path / "o5")


def test_save_files_keeps_relative_folders_and_refuses_escapes(tmp_path: Path):
    out = save_files([("ds/images/a b.tif", io.BytesIO(b"1"))], tmp_path / "up")
    assert out[0] == (tmp_path / "up" / "ds" / "images" / "a_b.tif").resolve()
    assert out[0].read_bytes() == b"1"
    with pytest.raises(UnsafeArchiveError):
        save_files([("../x.tif", io.BytesIO(b"1"))], tmp_path / "up")


def test_check_class_paths():
    ok = {
        "model": {"class_path": "geoft.tasks.SemanticSegmentationTask", "init_args": {"loss": "ce"}},
        "optimizer": {"class_path": "torch.optim.AdamW"},
        "trainer": {"callbacks": [{"class_path": "lightning.pytorch.callbacks.EarlyStopping"}]},
        "data": {"class_path": "GenericNonGeoSegmentationDataModule"},
    }
    check_class_paths(ok)
    for bad in ("os.system", "subprocess:Popen", "builtins.eval", "geoftx.evil"):
        cfg = {"trainer": {"callbacks": [{"class_path": bad}]}}
        with pytest.raises(ConfigError, match="outside the allowed packages") as err:
            check_class_paths(cfg)
        assert "trainer.callbacks[0].class_path" in str(err.value)
    with pytest.raises(ConfigError):
        check_class_paths({"x": {"class_path": "__import__('os')"}})


def test_auth_helpers():
    assert password_matches("s3cret", "s3cret")
    assert not password_matches("s3cre", "s3cret")
    assert is_local_address("127.0.0.1") and is_local_address("localhost") and is_local_address("::1")
    assert not is_local_address("") and not is_local_address("0.0.0.0") and not is_local_address("10.0.0.5")


def test_settings_from_env(tmp_path: Path):
    s = load_settings({"GEOFT_HOME": str(tmp_path), "GEOFT_DEMO_EPOCHS": "1"})
    assert s.runs_root == tmp_path / "runs" and s.data_roots == (tmp_path / "data",)
    assert s.demo_epochs == 1 and s.password is None and s.store_path.name == "runs.sqlite"
    with pytest.raises(GeoftError, match="GEOFT_DEMO_CHIPS"):
        load_settings({"GEOFT_HOME": str(tmp_path), "GEOFT_DEMO_CHIPS": "many"})


def test_check_config_paths_confines_web_configs(tmp_path: Path):
    from geoft.app.config_safety import check_config_paths

    root = tmp_path / "data"
    (root / "ds").mkdir(parents=True)
    ok = {"data": {"init_args": {"train_data_root": str(root / "ds"), "val_split": "ds/val.txt"}}}
    check_config_paths(ok, [root])
    bad = {"data": {"init_args": {"train_data_root": "/etc", "stats_cache_dir": str(root / ".." / "x")}}}
    with pytest.raises(ConfigError, match="outside the app's folders") as err:
        check_config_paths(bad, [root])
    assert "data.init_args.train_data_root" in str(err.value) and "stats_cache_dir" in str(err.value)
    check_config_paths(
        {"trainer": {"default_root_dir": "/elsewhere"}}, [root], skip=["trainer.default_root_dir"]
    )


def test_paths_are_confined_by_value_under_any_key(tmp_path: Path):
    from geoft.app.config_safety import check_config_paths, looks_like_path

    root = tmp_path / "data"
    root.mkdir()
    sneaky = {
        "trainer": {
            "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                           "init_args": {"dirpath": "/etc/cron.d"}}],
            "logger": {"init_args": {"name": "../../../outside"}},
        },
        "model": {"init_args": {"model_args": {"extra": ["fine", "~/.ssh/id_rsa"], "weights": "file:///etc/passwd"}}},
    }  # fmt: skip
    with pytest.raises(ConfigError, match="outside the app's folders") as err:
        check_config_paths(sneaky, [root])
    message = str(err.value)
    for where in (
        "callbacks[0].init_args.dirpath",
        "logger.init_args.name",
        "extra[1]",
        "model_args.weights",
    ):
        assert where in message
    # inside the roots, names, class paths, globs and numbers pass
    check_config_paths(
        {"data": {"class_path": "geoft.datamodules.GenericNonGeoSegmentationDataModule",
                  "init_args": {"img_grep": "*_S2Hand.tif", "train_data_root": "ds/train", "bands": ["B04"],
                                "means": [0.5], "weights": "https://example.org/w.pt"}}},
        [root],
    )  # fmt: skip
    assert looks_like_path("a/b") and looks_like_path("./x") and looks_like_path("~")
    assert not looks_like_path("geoft.tasks.SemanticSegmentationTask") and not looks_like_path("reflect")
