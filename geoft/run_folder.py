"""One folder per run: naming, the ``metrics.jsonl`` stream, atomic checkpoints, the deploy config.

Layout of ``<default_root_dir>/<run_name>/`` (``run_name`` defaults to ``<YYYYmmdd-HHMMSS>-<command>``)::

    config.yaml          the resolved config (every default filled in)
    deploy_config.yaml   the same without optimizer/scheduler/callbacks/loggers, backbone_pretrained: false
    checkpoints/         best-*.ckpt (lowest val/loss) and last.ckpt, written atomically
    metrics.csv          Lightning's CSVLogger
    hparams.yaml         CSVLogger's hyperparameters
    metrics.jsonl        one JSON object per line, for tailing (format below)
    predictions/         ``geoft predict`` output when --predict_output_dir is not given

``metrics.jsonl`` lines all have ``event`` and ``time`` (Unix seconds):

* ``{"event": "start", "stage": "fit"|"validate"|"test"|"predict", "max_epochs": int|null, "run_dir": str}``
* ``{"event": "metrics", "stage": "train"|"val"|"test", "epoch": int, "step": int, "metrics": {name: float}}``
  (train step metrics every ``log_every_n_steps``; epoch metrics after each train/val/test epoch)
* ``{"event": "checkpoint", "epoch": int, "step": int}`` (a checkpoint is being saved)
* ``{"event": "end", "stage": ..., "status": "finished"|"interrupted"|"failed", "error": str|null,
  "best_model_path": str|null, "best_model_score": float|null, "last_model_path": str|null}``
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from argparse import Namespace
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from geoft.storage import StorageError, ensure_writable_dir, storage_error, temporary_path

RUN_DIR_ENV = "GEOFT_RUN_DIR"
METRICS_FILE = "metrics.jsonl"
DEPLOY_CONFIG = "deploy_config.yaml"


def make_run_dir(root: str | Path, run_name: str | None, command: str) -> Path:
    """``root/run_name``, or a new ``root/<timestamp>-<command>`` folder (suffixed if taken).

    DDP worker processes re-run the command line; they reuse the folder the main process chose,
    which it passes on in ``$GEOFT_RUN_DIR``.
    """
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
        return Path(inherited)
    root = Path(root)
    if run_name:
        if Path(run_name).name != run_name or run_name in (".", ".."):
            from geoft.errors import ConfigError

            raise ConfigError(f"run_name {run_name!r} must be a plain folder name (no '/')")
        run_dir = root / run_name
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = root / f"{stamp}-{command}"
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = root / f"{stamp}-{command}-{n}"
    ensure_writable_dir(run_dir, "run folder")  # fail now, with the path, not after loading data
    run_dir = run_dir.resolve()
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class JsonlWriter:
    """Appends JSON lines to a file, flushing each one so readers can tail it.

    A line that cannot be written whole (disk full) is cut off again, so readers never see half a
    line, and the error is a :class:`~geoft.storage.StorageError` naming the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": round(time.time(), 3), **fields}, default=str)
        data = (line + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as err:
            self._raise(err)
        try:
            start = os.fstat(fd).st_size
            written = 0
            try:
                while written < len(data):
                    written += os.write(fd, data[written:])
            except OSError as err:
                if written:
                    os.ftruncate(fd, start)
                self._raise(err)
        finally:
            os.close(fd)

    def _raise(self, err: OSError) -> NoReturn:
        found = storage_error(err, self.path, "the metrics file")
        if found is None:
            raise err
        raise found from err


class JsonlLogger(Logger):
    """A Lightning logger that writes every metrics log call as a ``metrics`` line of ``metrics.jsonl``."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self._run_dir = Path(run_dir)
        self._writer = JsonlWriter(self._run_dir / METRICS_FILE)

    @property
    def name(self) -> str:
        return "jsonl"

    @property
    def version(self) -> str:
        return ""

    @property
    def root_dir(self) -> str:
        return str(self._run_dir)

    @property
    def log_dir(self) -> str:
        return str(self._run_dir)

    @property
    @rank_zero_experiment
    def experiment(self) -> JsonlWriter:
        return self._writer

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Hyperparameters are in config.yaml; nothing to add here."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = {k: _float(v) for k, v in metrics.items() if k != "epoch"}
        epoch = metrics.get("epoch")
        stages = {k.split("/", 1)[0] for k in values if "/" in k}
        stage = stages.pop() if len(stages) == 1 else "mixed"
        self._writer.write(
            "metrics",
            stage=stage,
            epoch=int(epoch) if epoch is not None else None,
            step=step,
            metrics=values,
        )


class RunEvents(Callback):
    """Writes ``start``, ``checkpoint`` and ``end`` lines of ``metrics.jsonl`` (rank zero only)."""

    def __init__(self, run_dir: str | Path, stage: str) -> None:
        self.writer = JsonlWriter(Path(run_dir) / METRICS_FILE)
        self.stage = stage
        self.run_dir = Path(run_dir)
        self._ended = False
        self._last_checkpoint: tuple[int, int] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self._ended = False
            self.writer.write(
                "start", stage=self.stage, max_epochs=trainer.max_epochs, run_dir=str(self.run_dir)
            )

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Called before the file is written; the path is reported from the checkpoint callback at the end.
        position = (trainer.current_epoch, trainer.global_step)
        if trainer.is_global_zero and position != self._last_checkpoint:  # best and last: one line
            self._last_checkpoint = position
            self.writer.write("checkpoint", epoch=trainer.current_epoch, step=trainer.global_step)

    def _end(self, trainer: Trainer, status: str, error: str | None = None) -> None:
        if self._ended or not trainer.is_global_zero:
            return
        self._ended = True
        if error is not None:
            error = error.replace("\nHint: ", " Hint: ")
        ckpt = (
            trainer.checkpoint_callback if isinstance(trainer.checkpoint_callback, ModelCheckpoint) else None
        )
        try:
            self.writer.write(
                "end",
                stage=self.stage,
                status=status,
                error=error,
                best_model_path=(ckpt.best_model_path or None) if ckpt else None,
                best_model_score=_float(ckpt.best_model_score)
                if ckpt and ckpt.best_model_score is not None
                else None,
                last_model_path=(ckpt.last_model_path or None) if ckpt else None,
            )
        except StorageError as err:
            # Raising here would hide the error that ended the run; say it and go on.
            print(f"geoft: warning: the end of the run was not recorded: {err}", file=sys.stderr)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._end(trainer, "interrupted" if trainer.interrupted else "finished")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        status = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
        self._end(trainer, status, f"{type(exception).__name__}: {exception}")


class BestAndLastCheckpoint(ModelCheckpoint):
    """Keeps the best checkpoint by ``monitor`` and a ``last.ckpt`` that is always the latest epoch.

    Lightning's ``save_last=True`` refreshes ``last.ckpt`` only when a new best is saved, so after an
    epoch that did not improve, ``last.ckpt`` (what resume and the app use) would hold older weights.
    """

    def __init__(self, dirpath: str, monitor: str = "val/loss", mode: str = "min") -> None:
        super().__init__(
            dirpath=dirpath,
            filename="best-epoch={epoch:02d}",
            monitor=monitor,
            mode=mode,
            save_last=True,
            auto_insert_metric_name=False,
        )

    def _refresh_last(self, trainer: Trainer) -> None:
        if (
            not self._should_skip_saving_checkpoint(trainer)
            and self._last_global_step_saved != trainer.global_step
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves checkpoints to a temporary file and renames it, so a crash never leaves a truncated checkpoint.

    Local checkpoints are streamed straight into the temporary file next to the final one (Lightning's
    own writer stages them in the system temp folder, which can fill up although the run's disk has
    room). A failed write (disk full, file-size limit) removes the temporary file, leaves the previous
    checkpoints as they were and raises a :class:`~geoft.storage.StorageError` naming the checkpoint.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):  # remote (fsspec) paths: Lightning's writer
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        import torch

        final = Path(path)
        tmp = temporary_path(final)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())  # the rename must not land before the data
            os.replace(tmp, final)
        except Exception as err:
            kept = "the checkpoints saved before are intact" if any(final.parent.glob("*.ckpt")) else ""
            found = storage_error(err, final, "checkpoint", kept)
            if found is None:
                raise
            raise found from err
        finally:
            tmp.unlink(missing_ok=True)


_DEPLOY_DROP_TOP = ("optimizer", "lr_scheduler", "ckpt_path", "seed_everything")
_DEPLOY_DROP_TASK = ("optimizer", "optimizer_hparams", "scheduler", "scheduler_hparams", "lr", "lr_overrides")
_PRETRAINED_KEYS = ("backbone_pretrained", "pretrained")


def _no_downloads(args: dict[str, Any]) -> None:
    for key in _PRETRAINED_KEYS:
        if key in args:
            args[key] = False
    if "backbone" in args and "backbone_pretrained" not in args and "pretrained" not in args:
        args["backbone_pretrained"] = False
    for key in ("backbone_kwargs", "backbone_args"):
        if isinstance(args.get(key), dict) and "pretrained" in args[key]:
            args[key]["pretrained"] = False
    args.pop("backbone_ckpt_path", None)


def deploy_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config for inference from a training config: no optimizer, scheduler, callbacks, loggers or
    weight downloads (the checkpoint holds every weight), trainer reduced to device settings."""
    out = copy.deepcopy(dict(config))
    for key in _DEPLOY_DROP_TOP:
        out.pop(key, None)
    trainer = out.get("trainer")
    if isinstance(trainer, dict):
        keep = ("accelerator", "devices", "precision", "num_nodes", "strategy")
        out["trainer"] = {k: v for k, v in trainer.items() if k in keep}
        out["trainer"]["logger"] = False
    model = out.get("model")
    if isinstance(model, dict):
        init = model.get("init_args") if isinstance(model.get("init_args"), dict) else model
        for key in _DEPLOY_DROP_TASK:
            init.pop(key, None)
        if isinstance(init.get("model_args"), dict):
            _no_downloads(init["model_args"])
    return out


def write_deploy_config(config: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(deploy_config(config), sort_keys=False))
    return path
