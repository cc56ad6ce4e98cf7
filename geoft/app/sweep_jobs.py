"""Sweeps as jobs of the app's queue: one job runs ``geoft sweep``, its trials are that job's ``geoft fit`` runs.

A sweep is one row of the :class:`~geoft.app.run_store.RunStore`, tagged ``sweep``, queued and dispatched
like a single run: it holds its device for the whole study and counts once against the per-user job
limit, and Stop stops the study (Lightning turns the worker's SIGTERM into ``SIGTERMException``, which
ends ``study.optimize``). Its run folder holds the submitted config, ``space.yaml``, ``sweep.json`` (the
number of trials and epochs per trial) and the study's journal (``study.journal``, study name = run id);
the trials' run folders are ``trial-NNNN/`` inside it, since a sweep's trials go to
``<runs root>/<study name>/``. Trials are read from the study (:mod:`geoft.app.sweep_results`) rather than
added as rows of their own, so the queue never sees two jobs where one process trains. The job's files and
its command, which the queue needs, are in :mod:`geoft.app.sweep_command`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from geoft.app.run_store import RunRecord
from geoft.app.sweep_command import (
    SPACE_FILE,
    SWEEP_FILE,
    SWEEP_TAG,
)
from geoft.errors import ConfigError
from geoft.sweeps.space import Parameter, check_space, parse_space

if TYPE_CHECKING:
    from geoft.app.jobs import JobRunner

WHERE = "the sweep space"

LR = "model.init_args.lr"
BATCH_SIZE = "data.init_args.batch_size"
BACKBONE = "model.init_args.model_args.backbone"
DECODER = "model.init_args.model_args.decoder"
LORA_RANK = "model.init_args.model_args.peft_config.peft_config_kwargs.r"
FREEZE_BACKBONE = "model.init_args.freeze_backbone"
FREEZE_DECODER = "model.init_args.freeze_decoder"


def _numbers(text: str, label: str) -> list[int]:
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise ConfigError(f"{label}: {part!r} is not a whole number above 0", hint="e.g. 4, 8, 16")
        values.append(int(part))
    return values


def _names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@dataclass(frozen=True)
class SpaceForm:
    """What the Train page's sweep form asks; empty fields are not searched."""

    lr_low: float | None = 1e-5
    lr_high: float | None = 1e-2
    lr_log: bool = True
    batch_sizes: str = ""
    backbones: str = ""
    decoders: str = ""
    lora_ranks: str = ""
    search_freeze_backbone: bool = False
    search_freeze_decoder: bool = False

    def space(self) -> dict[str, Any]:
        """The space mapping, as a space file of ``geoft sweep`` would hold it."""
        space: dict[str, Any] = {}
        if self.lr_low is not None and self.lr_high is not None:
            space[LR] = {"type": "float", "low": self.lr_low, "high": self.lr_high, "log": self.lr_log}
        for key, values in (
            (BATCH_SIZE, _numbers(self.batch_sizes, "batch sizes")),
            (BACKBONE, _names(self.backbones)),
            (DECODER, _names(self.decoders)),
            (LORA_RANK, _numbers(self.lora_ranks, "LoRA ranks")),
        ):
            if values:
                space[key] = {"type": "categorical", "choices": values}
        for key, searched in (
            (FREEZE_BACKBONE, self.search_freeze_backbone),
            (FREEZE_DECODER, self.search_freeze_decoder),
        ):
            if searched:
                space[key] = {"type": "categorical", "choices": [False, True]}
        return space


def checked_space(space: Mapping[str, Any], config: Mapping[str, Any]) -> list[Parameter]:
    """The checks ``geoft sweep`` makes before its first trial: each field, then each key against the config."""
    parameters = parse_space(space, WHERE)
    check_space(parameters, config, WHERE)
    return parameters


def submit_sweep(
    runner: JobRunner,
    config: dict[str, Any],
    space: Mapping[str, Any],
    trials: int,
    name: str,
    max_epochs: int | None = None,
    dataset_root: str | None = None,
) -> RunRecord:
    """Check the space against ``config`` and queue a sweep job of ``trials`` trials."""
    if trials < 1:
        raise ConfigError(f"a sweep needs at least 1 trial, got {trials}")
    if max_epochs is not None and max_epochs < 1:
        raise ConfigError(f"epochs per trial must be at least 1, got {max_epochs}")
    checked_space(space, config)
    files = {
        SPACE_FILE: yaml.safe_dump(dict(space), sort_keys=False),
        SWEEP_FILE: json.dumps({"trials": trials, "max_epochs": max_epochs}),
    }
    return runner.submit(config, name, tags=[SWEEP_TAG], dataset_root=dataset_root, files=files)
