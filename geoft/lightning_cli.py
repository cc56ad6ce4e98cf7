"""``geoft fit|validate|test|predict``: Lightning's CLI with a run folder, GeoTIFF predictions and metrics.jsonl.

Every run gets its own folder (see :mod:`geoft.runs`). ``predict`` writes GeoTIFFs with
:class:`~geoft.prediction_writer.GeoTiffPredictionWriter` into ``--predict_output_dir`` (default
``<run folder>/predictions``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.plugins.io import CheckpointIO

from geoft.errors import find_geoft_error
from geoft.prediction_writer import GeoTiffPredictionWriter
from geoft.runs.callbacks import RunEvents
from geoft.runs.checkpoint import BestAndLastCheckpoint
from geoft.runs.checkpoint_io import AtomicCheckpointIO
from geoft.runs.deploy import write_deploy_config
from geoft.runs.folder import RunDir
from geoft.runs.logger import JsonlLogger
from geoft.storage import describe, find_os_error

DEFAULT_ROOT = "runs"


class GeoftSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` and, for ``fit``, ``deploy_config.yaml`` into the run folder (rank zero)."""

    _log_dir: str | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # trainer.log_dir is a collective call under DDP: read it on every rank here, because
        # save_config runs on rank zero only and would wait for the other ranks for ever.
        self._log_dir = trainer.log_dir
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or self._log_dir is None:
            return
        dumped = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        dumped.pop("config", None)
        write_deploy_config(dumped, RunDir(Path(self._log_dir)).deploy_config)


def _as_list(value: Any) -> list[Any]:
    if value is None or value is True or value is False:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class GeoftCLI(LightningCLI):
    """LightningCLI for geoft tasks and datamodules (any LightningModule / LightningDataModule subclass)."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.run_folder: RunDir | None = None
        try:
            super().__init__(
                model_class=LightningModule,
                datamodule_class=LightningDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_callback=GeoftSaveConfigCallback,
                save_config_kwargs={"overwrite": True},
                seed_everything_default=0,
                parser_kwargs={"default_env": False},
                args=args,
                run=run,
            )
        except BaseException as err:
            if self.run_folder is None:
                raise
            self.run_folder.remove_if_empty()
            os_err = find_os_error(err) if find_geoft_error(err) is None else None
            if os_err is None:
                raise
            # a full disk hit by code that does not name its file (loggers...): name the run folder
            raise describe(os_err, os_err.filename or self.run_folder.path, "to") from err

    @property
    def run_dir(self) -> Path | None:
        """This run's folder (None before the config is parsed)."""
        return None if self.run_folder is None else self.run_folder.path

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_name",
            type=str | None,
            default=None,
            help="Folder name of this run under trainer.default_root_dir (default: <timestamp>-<command>).",
        )
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="This run's folder, used as it is (created if missing) instead of "
            "trainer.default_root_dir/run_name.",
        )
        parser.add_argument(
            "--predict_output_dir",
            type=str | None,
            default=None,
            help="Where predict writes GeoTIFFs (default: <run folder>/predictions).",
        )
        # bf16 autocast by default where the hardware runs it natively (measured 1.6x faster per training
        # step on this project's CPU, same accuracy); a config's trainer.precision still wins.
        from geoft.hardware import default_precision

        parser.set_defaults({"trainer.precision": default_precision()})

    def _parse_ckpt_path(self) -> None:
        # Lightning merges the checkpoint's hyperparameters into the config; a checkpoint trained by
        # the reference names the reference's task class and arguments, so the config (-c, translated)
        # describes its model instead, and on_load_checkpoint translates its weights.
        sub = self.config.get("subcommand")
        ckpt_path = self.config[sub].get("ckpt_path") if sub else None
        if ckpt_path and Path(ckpt_path).is_file():
            from geoft.runs.reference_layout import stderr_notice, trained_by_reference

            if trained_by_reference(ckpt_path):
                stderr_notice(f"{ckpt_path} was trained by the reference: the config describes its model")
                return
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        command = self.subcommand or "run"
        config = self.config[command] if self.subcommand else self.config
        if config.get("run_dir"):
            self.run_folder = RunDir.at(config.run_dir)
        else:
            root = config.trainer.default_root_dir or DEFAULT_ROOT
            self.run_folder = RunDir.create(root, config.get("run_name"), command)
        config.trainer.default_root_dir = str(self.run_folder.path)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        assert self.run_folder is not None and self.run_dir is not None
        command = self.subcommand or "run"
        config = self.config[command] if self.subcommand else self.config
        trainer_init = self._get(self.config_init, "trainer", default={})

        configured_logger = trainer_init.get("logger")
        loggers: list[Logger] = _as_list(configured_logger)
        if configured_logger is not False:
            # metrics.csv / hparams.yaml straight in the run folder (trainer.log_dir becomes the run folder);
            # a command reusing a run folder (e.g. `test --run_name <fit run>`) logs into a subfolder instead
            # of replacing the training metrics.
            reused = self.run_folder.logs_reused(command)
            version = command if reused else ""
            loggers.insert(0, CSVLogger(save_dir=str(self.run_dir), name="", version=version))
        loggers.append(JsonlLogger(self.run_dir))

        callbacks: list[Callback] = _as_list(trainer_init.get("callbacks"))
        callbacks.append(RunEvents(self.run_dir, command))
        checkpointing = trainer_init.get("enable_checkpointing") is not False
        if command == "fit" and checkpointing and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            # a task may say what to keep the best checkpoint by (detection: val/mAP, higher is better)
            monitor, mode = getattr(self.model, "checkpoint_monitor", ("val/loss", "min"))
            callbacks.append(
                BestAndLastCheckpoint(
                    dirpath=str(self.run_folder.checkpoints_dir), monitor=monitor, mode=mode
                )
            )
        if command == "predict" and not getattr(self.model, "writes_own_predictions", False):
            out_dir = config.get("predict_output_dir") or str(self.run_folder.predictions)
            make_writer = getattr(self.model, "prediction_writer", None)
            if callable(make_writer):  # tasks whose predictions are not rasters (detection: vector files)
                callbacks.append(make_writer(out_dir))
            else:
                outputs = ("prediction", "probabilities", "logits")
                callbacks.append(GeoTiffPredictionWriter(out_dir, outputs=outputs))

        plugins = _as_list(trainer_init.get("plugins"))
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())

        return super().instantiate_trainer(logger=loggers, callbacks=callbacks, plugins=plugins, **kwargs)
