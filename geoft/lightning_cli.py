"""``geoft fit|validate|test|predict``: Lightning's CLI with a run folder, GeoTIFF predictions and metrics.jsonl.

Every run gets its own folder (see :mod:`geoft.run_folder`). ``predict`` writes GeoTIFFs with
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

from geoft.prediction_writer import GeoTiffPredictionWriter
from geoft.run_folder import (
    DEPLOY_CONFIG,
    AtomicCheckpointIO,
    BestAndLastCheckpoint,
    JsonlLogger,
    RunEvents,
    make_run_dir,
    write_deploy_config,
)

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
        write_deploy_config(dumped, Path(self._log_dir) / DEPLOY_CONFIG)


def _as_list(value: Any) -> list[Any]:
    if value is None or value is True or value is False:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class GeoftCLI(LightningCLI):
    """LightningCLI for geoft tasks and datamodules (any LightningModule / LightningDataModule subclass)."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.run_dir: Path | None = None
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

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_name",
            type=str | None,
            default=None,
            help="Folder name of this run under trainer.default_root_dir (default: <timestamp>-<command>).",
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

    def before_instantiate_classes(self) -> None:
        command = self.subcommand or "run"
        config = self.config[command] if self.subcommand else self.config
        root = config.trainer.default_root_dir or DEFAULT_ROOT
        self.run_dir = make_run_dir(root, config.get("run_name"), command)
        config.trainer.default_root_dir = str(self.run_dir)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        assert self.run_dir is not None
        command = self.subcommand or "run"
        config = self.config[command] if self.subcommand else self.config
        trainer_init = self._get(self.config_init, "trainer", default={})

        configured_logger = trainer_init.get("logger")
        loggers: list[Logger] = _as_list(configured_logger)
        if configured_logger is not False:
            # metrics.csv / hparams.yaml straight in the run folder (trainer.log_dir becomes the run folder);
            # a command reusing a run folder (e.g. `test --run_name <fit run>`) logs into a subfolder instead
            # of replacing the training metrics.
            reused = command != "fit" and (self.run_dir / "metrics.csv").exists()
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
                BestAndLastCheckpoint(dirpath=str(self.run_dir / "checkpoints"), monitor=monitor, mode=mode)
            )
        if command == "predict":
            out_dir = config.get("predict_output_dir") or str(self.run_dir / "predictions")
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
