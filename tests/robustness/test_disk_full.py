"""A full disk, a file-size limit and unwritable output folders, for real: nothing is lost, errors are plain.

The full disk is a small tmpfs mounted under the test's folder (needs root, as in the project's
container; the tests say loudly why they skip elsewhere). The file-size limit is ``RLIMIT_FSIZE`` set
in the child process (CPython ignores SIGXFSZ, so writes past it fail with EFBIG). Training runs the
real ``geoft fit`` / ``geoft predict-scene`` in subprocesses and the app's real job worker.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.transform import from_origin

from geoft.cli import main
from geoft.io.scene import predict_scene_to_geotiff
from geoft.storage import StorageError

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GEOFT = REPO / ".venv" / "bin" / "geoft"
ENV = {**os.environ, "OMP_NUM_THREADS": "2"}


# -- helpers ----------------------------------------------------------------------------------------


def _tmpfs_unavailable() -> str | None:
    """Why a tmpfs cannot be mounted here (None: it can)."""
    if shutil.which("mount") is None:
        return "no `mount` command"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"geoft-tmpfs-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True, text=True
        )
        if done.returncode != 0:
            return f"`mount -t tmpfs` refused: {done.stderr.strip() or done.returncode} (needs root)"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


TMPFS_UNAVAILABLE = _tmpfs_unavailable()
needs_tmpfs = pytest.mark.skipif(
    TMPFS_UNAVAILABLE is not None,
    reason=f"REAL FULL-DISK TEST SKIPPED: cannot mount a small tmpfs here ({TMPFS_UNAVAILABLE})",
)


@contextmanager
def tmpfs(path: Path, size: int, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes at ``path`` for the duration of the block."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(path)])  # a lingering child: detach it anyway


def _file_size_limit(limit: int):  # noqa: ANN202 - a preexec_fn
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _geoft(args: list[str], cwd: Path, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    exe = [str(GEOFT)] if GEOFT.exists() else [sys.executable, "-m", "geoft.cli"]
    return subprocess.run(
        exe + args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        preexec_fn=_file_size_limit(fsize) if fsize else None,
    )


def _last_words(stderr: str) -> str:
    """What a user sees last: the final non-empty stderr lines (message and hint)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines, "no error message at all"
    start = (
        max(i for i, ln in enumerate(lines) if ln.startswith("geoft: error:"))
        if any(ln.startswith("geoft: error:") for ln in lines)
        else len(lines) - 1
    )
    return "\n".join(lines[start:])


def _leftovers(folder: Path) -> list[str]:
    """Temporary or partial files anywhere under ``folder``."""
    return [
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.endswith(".tmp") or name.startswith(".geoft-write-check-")
    ]


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_loadable(ckpt: Path, epoch: int) -> None:
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["epoch"] == epoch
    assert state["state_dict"] and all(torch.isfinite(v).all() for v in state["state_dict"].values())


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_demo_workspace) -> Path:
    """Tiny demo data and a tiny config (absolute paths, so jobs can run from any folder)."""
    root = tmp_path_factory.mktemp("diskfull")
    return tiny_demo_workspace(root, {"max_epochs": 3, "accelerator": "cpu"}, absolute_roots=True)


@pytest.fixture(scope="module")
def seed_run(workspace: Path) -> Path:
    """One epoch on an ordinary disk: a good checkpoint, and the size a checkpoint of this model takes."""
    done = _geoft(["fit", "-c", "config.yaml", "--run_name", "seed", "--trainer.max_epochs", "1"], workspace)
    assert done.returncode == 0, done.stderr[-3000:]
    return workspace / "runs" / "seed"


def _ckpt_size(seed_run: Path) -> int:
    return (seed_run / "checkpoints" / "last.ckpt").stat().st_size


def _disk_for_one_epoch(seed_run: Path) -> int:
    """Room for epoch 0's two checkpoints (best and last) and the small files, not for epoch 1's."""
    return 2 * _ckpt_size(seed_run) + _ckpt_size(seed_run) // 2


# -- training -----------------------------------------------------------------------------------------


@needs_tmpfs
def test_fit_when_the_disk_fills_after_the_first_checkpoint(workspace: Path, seed_run: Path) -> None:
    with tmpfs(workspace / "full_disk_fit", _disk_for_one_epoch(seed_run)) as disk:
        done = _geoft(
            ["fit", "-c", "config.yaml", "--run_name", "r", "--trainer.default_root_dir", str(disk)],
            workspace,
        )
        assert done.returncode == 2, done.stderr[-3000:]
        said = _last_words(done.stderr)
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        run = disk / "r"
        assert said.startswith(f"geoft: error: could not write checkpoint {run / 'checkpoints'}"), said
        assert (
            "the disk is full (No space left on device" in said
            and "checkpoints saved before are intact" in said
        )
        assert "Hint: free space" in said

        # epoch 0's checkpoints are whole and load; nothing half-written or temporary is left
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best-epoch=00.ckpt", "last.ckpt"]
        for name in ("best-epoch=00.ckpt", "last.ckpt"):
            _assert_loadable(run / "checkpoints" / name, epoch=0)
        assert _leftovers(disk) == []

        events = _events(run)  # every line whole
        assert events[-1]["event"] == "end" and events[-1]["status"] == "failed"
        assert "disk is full" in events[-1]["error"]
        assert events[-1]["last_model_path"].endswith("last.ckpt")
        assert {e["epoch"] for e in events if e["event"] == "metrics" and e["stage"] == "val"} >= {0}


def test_resumed_fit_past_the_file_size_limit_keeps_the_previous_checkpoint(
    workspace: Path, seed_run: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(seed_run, runs / "seed")
    last = runs / "seed" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    done = _geoft(
        [
            "fit", "-c", "config.yaml", "--run_name", "seed", "--trainer.default_root_dir", str(runs),
            "--trainer.max_epochs", "2", "--ckpt_path", str(last),
        ],
        workspace,
        fsize=_ckpt_size(seed_run) // 2,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    said = _last_words(done.stderr)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert said.startswith(f"geoft: error: could not write checkpoint {last.parent}"), said
    assert "File too large" in said and "file-size limit" in said
    assert last.read_bytes() == before
    _assert_loadable(last, epoch=0)
    assert _leftovers(runs) == []
    events = _events(runs / "seed")
    assert events[-1]["event"] == "end" and events[-1]["status"] == "failed"
    assert "File too large" in events[-1]["error"]


def test_fit_into_a_path_under_a_file_fails_at_once_naming_it(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the runs folder should go")
    root = blocker / "runs"
    code = main(["fit", "-c", str(workspace / "config.yaml"), "--trainer.default_root_dir", str(root)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"geoft: error: could not write run folder {root}" in err
    assert "a part of the path is a file, not a folder" in err and "Traceback" not in err


@needs_tmpfs
def test_fit_into_a_read_only_folder_fails_at_once_naming_it(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "ro", 1 << 20, read_only=True) as ro:
        code = main(
            [
                "fit",
                "-c",
                str(workspace / "config.yaml"),
                "--trainer.default_root_dir",
                str(ro),
                "--run_name",
                "x",
            ]
        )
        err = capsys.readouterr().err
        assert code == 2
        assert f"geoft: error: could not write run folder {ro / 'x'}: the file system is read-only" in err
        assert os.listdir(ro) == []


# -- scene prediction ---------------------------------------------------------------------------------


def _scene(path: Path, bands: int, size: int = 256) -> Path:
    rng = np.random.default_rng(0)
    with rasterio.open(
        path, "w", driver="GTiff", height=size, width=size, count=bands, dtype="float32",
        crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10),
    ) as dst:  # fmt: skip
        dst.write(rng.normal(1500, 800, (bands, size, size)).astype("float32"))
    return path


def test_predict_scene_unwritable_output_fails_before_loading_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    scene = _scene(tmp_path / "scene.tif", bands=6, size=32)
    out = blocker / "out" / "pred.tif"
    # the checkpoint does not exist: the output folder must be checked first
    code = main(["predict-scene", "--ckpt_path", str(tmp_path / "missing.ckpt"), "--input", str(scene),
                 "--output", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert f"geoft: error: could not write output folder {out.parent}" in err
    assert "not a folder" in err and "Traceback" not in err


@needs_tmpfs
@pytest.mark.parametrize("task", ["regression", "segmentation"])
def test_predict_scene_on_a_full_disk_leaves_nothing_behind(tmp_path: Path, task: str) -> None:
    scene = _scene(tmp_path / "scene.tif", bands=3)

    def forward(tiles: torch.Tensor) -> torch.Tensor:  # incompressible output: fills the disk
        return tiles[:, :1] if task == "regression" else tiles / 1000  # soft, noisy probabilities

    with tmpfs(tmp_path / "disk", 200 * 1024) as disk:
        out, prob = disk / "pred.tif", disk / "prob.tif"
        with pytest.raises(StorageError) as caught:
            predict_scene_to_geotiff(
                forward, scene, out, task=task, params={"crop": 64, "stride": 48}, block_size=64,
                probabilities_path=prob if task == "segmentation" else None,
            )  # fmt: skip
        message = str(caught.value)
        assert message.startswith(f"could not write the prediction {disk}"), message
        assert "the disk is full (No space left on device" in message
        assert os.listdir(disk) == []  # no final file, no temporary file


def test_predict_scene_cli_past_the_file_size_limit(workspace: Path, seed_run: Path, tmp_path: Path) -> None:
    scene = _scene(tmp_path / "scene.tif", bands=6, size=128)
    out = tmp_path / "out"
    out.mkdir()
    done = _geoft(
        [
            "predict-scene", "-c", "config.yaml", "--ckpt_path", str(seed_run / "checkpoints" / "last.ckpt"),
            "--input", str(scene), "--output", str(out / "pred.tif"), "--probabilities", str(out / "prob.tif"),
            "--block_size", "64",
        ],
        workspace,
        fsize=64 * 1024,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    said = _last_words(done.stderr)
    assert "Traceback" not in done.stderr
    assert said.startswith(f"geoft: error: could not write the prediction {out}"), said
    assert "File too large" in said
    assert os.listdir(out) == []


# -- the app -----------------------------------------------------------------------------------------


@needs_tmpfs
def test_app_job_on_a_full_disk_is_failed_with_the_reason(
    workspace: Path, seed_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geoft.app.jobs import JobRunner
    from geoft.app.run_store import FAILED, RunStore

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    config = yaml.safe_load((workspace / "config.yaml").read_text())
    store = RunStore(tmp_path / "runs.sqlite")  # the store is on another disk, as in a deployment
    with tmpfs(tmp_path / "runs", _disk_for_one_epoch(seed_run) + (256 << 10)) as disk:
        runner = JobRunner(store, disk)
        run = runner.wait(runner.submit(config, "full", device="cpu").id, timeout_s=240)
        log = run.log_path.read_text() if run.log_path.exists() else ""
        assert run.status == FAILED, (run.status, run.error, log[-3000:])
        assert run.exit_code == 2
        # the worker stores the log's last lines; they hold the CLI's one plain message
        assert f"geoft: error: could not write checkpoint {run.run_dir / 'checkpoints'}" in run.error, (
            run.error
        )
        assert "the disk is full" in run.error and "Traceback" not in run.error
        assert (run.run_dir / "checkpoints" / "last.ckpt").is_file()
        assert _leftovers(disk) == []
