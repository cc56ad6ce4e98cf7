"""``geoft sweep``: an Optuna study whose trials are ``geoft fit`` runs, each in its own run folder.

Each trial writes the config with its sampled values as ``submitted_config.yaml`` of its run folder
``<runs root>/<study>/trial-NNNN/`` and runs it
through :class:`~geoft.lightning_cli.GeoftCLI` exactly as ``geoft fit -c`` does, plus Optuna's Lightning
pruning callback. The objective is the best value of the run's checkpoint monitor (the config's
``ModelCheckpoint`` or the task's default, ``val/loss``), so the study's direction is the monitor's mode.
The study lives in an Optuna storage (a journal file beside the runs by default): the same ``--study_name``
resumes, and several workers on one storage share the study.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from optuna_integration import PyTorchLightningPruningCallback

from geoft.config.checks import section_class
from geoft.config.loading import rewrite_config_args
from geoft.errors import ConfigError, find_geoft_error
from geoft.lightning_cli import DEFAULT_ROOT, GeoftCLI
from geoft.runs.folder import RunDir
from geoft.sweeps.space import Parameter, apply
from geoft.training_guards import NonFiniteLossError, OutOfMemoryError

# Outcomes of the sampled values (a learning rate that diverges, a batch that does not fit): the trial
# fails and the sweep goes on. Any other error (a bad config) stops the sweep with its message.
TRIAL_FAILURES = (NonFiniteLossError, OutOfMemoryError)

STORAGE_FILE = "sweeps.journal"
BEST_CONFIG = "best.yaml"


@dataclass(frozen=True)
class Monitor:
    """The metric a trial is scored by, and whether lower (``min``) or higher (``max``) is better."""

    name: str
    mode: str

    @property
    def direction(self) -> str:
        return "minimize" if self.mode == "min" else "maximize"


def config_monitor(config: Mapping[str, Any]) -> Monitor:
    """The checkpoint monitor ``geoft fit`` would use: a configured ``ModelCheckpoint``'s, else the task's."""
    callbacks = (config.get("trainer") or {}).get("callbacks") or []
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        if isinstance(callback, Mapping) and "class_path" in callback:
            cls = section_class(callback, "trainer.callbacks")
            args = callback.get("init_args") or {}
            if issubclass(cls, ModelCheckpoint) and args.get("monitor"):
                return Monitor(str(args["monitor"]), str(args.get("mode", "min")))
    task = section_class(config["model"], "model") if isinstance(config.get("model"), Mapping) else None
    # tasks scored higher-is-better (detection: mAP) say so as a class attribute; the metric name may
    # depend on the model (mask mAP), so it is read from the trainer once the task is built.
    return Monitor("val/loss", getattr(task, "checkpoint_mode", "min"))


def default_storage(config: Mapping[str, Any]) -> str:
    return str(runs_root(config).resolve() / STORAGE_FILE)


def open_storage(spec: str) -> optuna.storages.BaseStorage | str:
    """An Optuna storage URL (``sqlite:///x.db``, ``postgresql://...``) as it is, or a journal file path.

    A journal file (Optuna's JournalStorage) is the default: it takes appends from several local worker
    processes through file locks, where two workers creating one new SQLite study at once can fail.
    """
    if "://" in spec:
        return spec
    path = Path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def runs_root(config: Mapping[str, Any]) -> Path:
    return Path((config.get("trainer") or {}).get("default_root_dir") or DEFAULT_ROOT)


class TrialCLI(GeoftCLI):
    """``geoft fit`` with Optuna's pruning callback on the run's checkpoint monitor."""

    def __init__(self, args: list[str], trial: optuna.Trial, mode: str) -> None:
        self.trial = trial
        self.mode = mode
        super().__init__(args=args)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        checkpoint = trainer.checkpoint_callback
        monitor = checkpoint.monitor if isinstance(checkpoint, ModelCheckpoint) else None
        if monitor is None:
            monitor, mode = getattr(self.model, "checkpoint_monitor", ("val/loss", "min"))
        else:
            mode = checkpoint.mode  # type: ignore[union-attr]
        if mode != self.mode:
            raise ConfigError(
                f"the run is scored by {monitor} ({mode}) but the study optimises it the other way ({self.mode})",
                hint="give the ModelCheckpoint's mode in the config",
            )
        self.monitor = monitor
        trainer.callbacks.append(PyTorchLightningPruningCallback(self.trial, monitor=monitor))
        return trainer


class _NoTracebackForGeoftErrors(logging.Filter):
    """Optuna logs a failed trial's traceback; a GeoftError is printed as one message by the CLI instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and find_geoft_error(record.exc_info[1]):
            record.exc_info = None
        return True


@dataclass
class Sweep:
    """What a sweep needs: the translated config, its space, and the study's storage and name."""

    config: dict[str, Any]
    parameters: list[Parameter]
    study_name: str
    storage: str
    max_epochs: int | None = None
    notice: Callable[[str], None] = print

    @property
    def folder(self) -> Path:
        return runs_root(self.config) / self.study_name

    def study(
        self,
        sampler: optuna.samplers.BaseSampler | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
    ) -> optuna.Study:
        monitor = config_monitor(self.config)
        self.folder.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=open_storage(self.storage),
            sampler=sampler,
            pruner=pruner,
            direction=monitor.direction,
            load_if_exists=True,
        )
        if study.direction.name.lower() != monitor.direction:
            raise ConfigError(
                f"study {self.study_name!r} in {self.storage} was created to {study.direction.name.lower()}, "
                f"but this config's monitor {monitor.name} is to {monitor.direction}",
                hint="give another --study_name",
            )
        return study

    def objective(self, trial: optuna.Trial) -> float:
        values = {p.key: p.suggest(trial) for p in self.parameters}
        run = RunDir.create(self.folder, f"trial-{trial.number:04d}", "fit")
        trial.set_user_attr("run_dir", str(run.path))
        config_file = run.submitted_config
        config_file.write_text(yaml.safe_dump(apply(self.config, values), sort_keys=False))
        args = ["fit", "-c", str(config_file), "--run_dir", str(run.path)]
        if self.max_epochs is not None:
            args += ["--trainer.max_epochs", str(self.max_epochs)]
        mode = config_monitor(self.config).mode
        with warnings.catch_warnings():  # as in geoft.cli: args are given explicitly on purpose
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            cli = TrialCLI(rewrite_config_args(args, self.notice), trial, mode)
        checkpoint = cli.trainer.checkpoint_callback
        score = checkpoint.best_model_score if isinstance(checkpoint, ModelCheckpoint) else None
        if score is None:
            score = cli.trainer.callback_metrics.get(cli.monitor)
        if score is None:
            raise ConfigError(
                f"trial {trial.number}: the run logged no {cli.monitor} (run folder {run.path})",
                hint="check that the validation split is set and the monitor's name",
            )
        return float(score)  # NaN: Optuna records the trial as failed and the sweep goes on

    def run(self, study: optuna.Study, n_trials: int) -> optuna.Study:
        quiet = _NoTracebackForGeoftErrors()
        handlers = logging.getLogger("optuna").handlers  # a logger's own filters miss its children's records
        for handler in handlers:
            handler.addFilter(quiet)
        try:
            study.optimize(self.objective, n_trials=n_trials, catch=TRIAL_FAILURES)
        finally:
            for handler in handlers:
                handler.removeFilter(quiet)
        return study

    def write_best(self, study: optuna.Study, path: str | Path | None = None) -> Path:
        """The config with the best trial's values, ready for ``geoft fit -c``."""
        best = study.best_trial  # ValueError when no trial completed
        out = Path(path) if path else self.folder / BEST_CONFIG
        out.parent.mkdir(parents=True, exist_ok=True)
        header = f"# geoft sweep {self.study_name}: trial {best.number}, value {best.value}\n"
        out.write_text(header + yaml.safe_dump(apply(self.config, best.params), sort_keys=False))
        return out
