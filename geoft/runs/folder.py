"""One folder per run, and :class:`RunDir`, the one place that knows its layout.

``<default_root_dir>/<run_name>/`` (``run_name`` defaults to ``<YYYYmmdd-HHMMSS>-<command>``), or the
folder given as ``--run_dir``::

    config.yaml            the resolved config (every default filled in)
    deploy_config.yaml     the same without optimizer/scheduler/callbacks/loggers, backbone_pretrained: false
    checkpoints/           best-*.ckpt (lowest val/loss) and last.ckpt, written atomically
    metrics.csv            Lightning's CSVLogger (a later command reusing the folder logs into <command>/)
    hparams.yaml           CSVLogger's hyperparameters
    metrics.jsonl          one JSON object per line, for tailing (see :mod:`geoft.runs.events`)
    confusion_matrices.json  per-split confusion matrices of classification and segmentation tasks
    predictions/           ``geoft predict`` output when --predict_output_dir is not given

The app (and ``geoft sweep``, for each trial) adds ``submitted_config.yaml`` (what it handed to ``geoft fit``), ``job.json``, ``app.json`` and
``train.log`` (the job's output).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from geoft.errors import ConfigError
from geoft.runs.events import end_event, read_events
from geoft.storage import ensure_writable_dir

# DDP worker processes re-run the command line; they reuse the folder the main process chose, which it
# hands on in this variable (Lightning starts them with the parent's environment).
RUN_DIR_ENV = "GEOFT_RUN_DIR"


def _newest(paths: list[Path]) -> list[Path]:
    """Existing paths, newest first. A training job replaces and removes checkpoints while others list
    them, so a path gone between the listing and its ``stat`` is left out rather than raised."""
    stamped = []
    for path in paths:
        try:
            stamped.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    return [path for _, path in sorted(stamped, key=lambda item: item[0], reverse=True)]


@dataclass(frozen=True)
class RunDir:
    """A run folder: where each file of a run lies, and the few questions asked of them."""

    path: Path

    CONFIG = "config.yaml"
    DEPLOY_CONFIG = "deploy_config.yaml"
    SUBMITTED_CONFIG = "submitted_config.yaml"
    CHECKPOINTS = "checkpoints"
    METRICS = "metrics.jsonl"
    CONFUSION = "confusion_matrices.json"
    PREDICTIONS = "predictions"
    LOG = "train.log"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # -- making one --------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, run_name: str | None, command: str) -> RunDir:
        """``root/run_name``, or a new ``root/<timestamp>-<command>`` folder (suffixed if taken)."""
        inherited = os.environ.get(RUN_DIR_ENV)
        if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
            return cls(Path(inherited))
        root = Path(root)
        if run_name:
            if Path(run_name).name != run_name or run_name in (".", ".."):
                raise ConfigError(f"run_name {run_name!r} must be a plain folder name (no '/')")
            path = root / run_name
        else:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = root / f"{stamp}-{command}"
            n = 1
            while path.exists():
                n += 1
                path = root / f"{stamp}-{command}-{n}"
        return cls.at(path)

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        """Exactly this folder (``--run_dir``), created if missing; DDP workers reuse it too."""
        ensure_writable_dir(path, "run folder")  # fail now, with the path, not after loading data
        run = cls(Path(path).resolve())
        os.environ[RUN_DIR_ENV] = str(run.path)
        return run

    def remove_if_empty(self) -> None:
        """A run that failed before writing anything leaves no empty folder."""
        if self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    # -- files -------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def deploy_config(self) -> Path:
        return self.path / self.DEPLOY_CONFIG

    @property
    def submitted_config(self) -> Path:
        return self.path / self.SUBMITTED_CONFIG

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def predictions(self) -> Path:
        return self.path / self.PREDICTIONS

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    def logs_reused(self, command: str) -> bool:
        """Whether a non-fit command reuses a folder that already holds training metrics."""
        return command != "fit" and (self.path / "metrics.csv").exists()

    # -- questions ---------------------------------------------------------------------------
    def checkpoints(self) -> list[Path]:
        """Checkpoint files anywhere in the folder, newest first."""
        return _newest(list(self.path.rglob("*.ckpt")))

    def best(self) -> Path | None:
        """The best checkpoint (not ``last``) if saved, else the newest one."""
        ckpts = self.checkpoints()
        best = [c for c in ckpts if not c.name.startswith("last")]
        return (best or ckpts or [None])[0]

    def last(self) -> Path | None:
        """The checkpoint to resume from: ``last.ckpt`` if present, else the newest one."""
        ckpts = self.checkpoints()
        last = [c for c in ckpts if c.name.startswith("last")]
        return (last or ckpts or [None])[0]

    def metrics_file(self) -> Path | None:
        """``metrics.jsonl`` of the folder (or the newest one below it)."""
        if self.metrics.is_file():
            return self.metrics
        found = _newest(list(self.path.rglob(self.METRICS)))
        return found[0] if found else None

    def confusion_file(self) -> Path | None:
        """The newest ``confusion_matrices.json`` (a test run reusing the folder writes one below it)."""
        found = _newest(list(self.path.rglob(self.CONFUSION)))
        return found[0] if found else None

    def metrics_size(self) -> int:
        """Bytes of ``metrics.jsonl`` so far: read the events of a later attempt from this offset."""
        try:
            return self.metrics.stat().st_size
        except OSError:
            return 0

    def events(self, offset: int = 0) -> list[dict[str, Any]]:
        """The ``start``/``checkpoint``/``end`` events of ``metrics.jsonl`` from byte ``offset`` on."""
        return read_events(self.metrics, offset)

    def end(self, offset: int = 0) -> dict[str, Any] | None:
        """The ``end`` event written after byte ``offset`` of ``metrics.jsonl``, if any."""
        return end_event(self.metrics, offset)


def make_run_dir(root: str | Path, run_name: str | None, command: str) -> Path:
    """The path of :meth:`RunDir.create`."""
    return RunDir.create(root, run_name, command).path
