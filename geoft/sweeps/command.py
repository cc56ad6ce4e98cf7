"""The ``geoft sweep`` command line (see docs/sweeps.md)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import optuna

from geoft.config import load_configs
from geoft.errors import ConfigError
from geoft.sweeps.space import check_space, load_space
from geoft.sweeps.study import Sweep, default_storage

SAMPLERS: dict[str, Callable[[int | None], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}
PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2),
    "hyperband": optuna.pruners.HyperbandPruner,
    "none": optuna.pruners.NopPruner,
}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geoft sweep", description="Search hyperparameters with Optuna; each trial is a geoft fit run."
    )
    parser.add_argument("-c", "--config", action="append", default=[], help="config file (repeatable)")
    parser.add_argument("--space", required=True, help="search space YAML (dotted config keys)")
    parser.add_argument("--trials", type=int, required=True, help="trials this worker runs")
    parser.add_argument(
        "--study_name", "--study-name", default=None, help="default: sweep-<config file name>"
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (sqlite:///x.db, postgresql://...) or a journal file path "
        "(default: <runs root>/sweeps.journal)",
    )
    parser.add_argument("--sampler", default="tpe", choices=sorted(SAMPLERS))
    parser.add_argument("--pruner", default="median", choices=sorted(PRUNERS))
    parser.add_argument("--seed", type=int, default=None, help="sampler seed")
    parser.add_argument(
        "--max_epochs", type=int, default=None, help="epochs per trial (default: the config's)"
    )
    parser.add_argument(
        "--best_config",
        default=None,
        help="where to write the best config (default: <study folder>/best.yaml)",
    )
    return parser


def sweep_command(args: list[str], notice: Callable[[str], None]) -> int:
    opts = parser().parse_args(args)
    if opts.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {opts.trials}")
    config = load_configs(opts.config, notice)
    parameters = load_space(opts.space)
    check_space(parameters, config, f"space file {opts.space}")
    sweep = Sweep(
        config=config,
        parameters=parameters,
        study_name=opts.study_name or f"sweep-{Path(opts.config[-1]).stem}",
        storage=opts.storage or default_storage(config),
        max_epochs=opts.max_epochs,
        notice=notice,
    )
    study = sweep.study(SAMPLERS[opts.sampler](opts.seed), PRUNERS[opts.pruner]())
    sweep.run(study, opts.trials)
    states = [t.state.name.lower() for t in study.trials]
    summary = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    print(f"study {sweep.study_name} ({sweep.storage}): {len(states)} trials ({summary})")
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        raise ConfigError(f"study {sweep.study_name}: no trial completed, so there is no best config yet")
    best = study.best_trial
    print(f"best trial {best.number}: {best.value} ({best.user_attrs.get('run_dir', '')})")
    for key, value in best.params.items():
        print(f"  {key}: {value}")
    print(f"best config: {sweep.write_best(study, opts.best_config)}  (geoft fit -c it)")
    return 0
