"""The search space file of ``geoft sweep``: dotted config keys and how Optuna samples each one.

::

    model.init_args.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
    data.init_args.batch_size: {type: categorical, choices: [4, 8, 16]}
    model.init_args.model_args.backbone: {type: categorical, choices: [prithvi_eo_tiny, prithvi_eo_v2_100_tl]}
    model.init_args.model_args.peft_config.peft_config_kwargs.r: {type: int, low: 4, high: 16, step: 4}
    model.init_args.freeze_backbone: {type: categorical, choices: [true, false]}

Every key is checked against the config before the first trial (:func:`check_space`): the top-level
section, each class's arguments (:mod:`geoft.config.checks`) and near misses of keys the config has.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from geoft.config.checks import check_config
from geoft.config.dotted import set_dotted
from geoft.config.loading import load_config
from geoft.errors import ConfigError

TOP_LEVEL = ("trainer", "model", "data", "optimizer", "lr_scheduler", "seed_everything")
_KINDS = ("float", "int", "categorical")
_SPEC_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"}}
_SPEC_KEYS["categorical"] = {"type", "choices"}


@dataclass(frozen=True)
class Parameter:
    """One searched config key: ``key`` is a dotted path (``model.init_args.lr``)."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )  # type: ignore[arg-type]
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)  # type: ignore[arg-type]

    def examples(self) -> list[Any]:
        """Values that stand for the whole range when the config is checked."""
        return list(self.choices) if self.kind == "categorical" else [self.low]


def _parameter(key: Any, spec: Any, where: str) -> Parameter:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"{where}: {key!r} is not a dotted config key such as model.init_args.lr")
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: {key} must map to {{type: float|int|categorical, ...}}, got {spec!r}")
    kind = spec.get("type")
    if kind not in _KINDS:
        raise ConfigError(f"{where}: {key}.type must be one of {', '.join(_KINDS)}, got {kind!r}")
    unknown = sorted(set(spec) - _SPEC_KEYS[kind])
    if unknown:
        raise ConfigError(
            f"{where}: {key} has unknown field(s) {unknown}",
            hint=f"a {kind} parameter takes {', '.join(sorted(_SPEC_KEYS[kind]))}",
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: {key}.choices must be a non-empty list")
        bad = [c for c in choices if c is not None and not isinstance(c, (bool, int, float, str))]
        if bad:
            raise ConfigError(
                f"{where}: {key}.choices must be plain values (numbers, strings, booleans, null), got {bad[0]!r}",
                hint="search a nested value by its own dotted key, e.g. ...peft_config.peft_config_kwargs.r",
            )
        return Parameter(key, kind, choices=tuple(choices))
    number = int if kind == "int" else (int, float)
    low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log", False)
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, number):
            raise ConfigError(
                f"{where}: {key}.{name} must be a{'n int' if kind == 'int' else ' number'}, got {value!r}"
            )
    if not low < high:  # type: ignore[operator]
        raise ConfigError(f"{where}: {key}.low ({low}) must be below high ({high})")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: {key}.log must be true or false, got {log!r}")
    if log and low <= 0:  # type: ignore[operator]
        raise ConfigError(f"{where}: {key}: log: true needs low > 0, got {low}")
    if log and step is not None:
        raise ConfigError(f"{where}: {key}: give step or log: true, not both (Optuna takes one)")
    return Parameter(key, kind, low=low, high=high, log=log, step=step)


def load_space(path: str | Path) -> list[Parameter]:
    """Read and check the fields of a space file (its keys are checked against a config by :func:`check_space`)."""
    return parse_space(load_config(path), f"space file {path}")


def parse_space(raw: Mapping[str, Any] | None, where: str) -> list[Parameter]:
    """Check the fields of a space mapping (a space file's contents, or the app's sweep form)."""
    if not raw:
        raise ConfigError(f"{where} names no parameters")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must map dotted config keys to parameters, got {type(raw).__name__}")
    return [_parameter(key, spec, where) for key, spec in raw.items()]


def apply(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with each dotted key of ``values`` set."""
    out = copy.deepcopy(dict(config))
    for key, value in values.items():
        set_dotted(out, key, value)
    return out


def _near_miss(config: Mapping[str, Any], key: str) -> str | None:
    """A key that is not in the config but is one typo away from one that is (``backbon``)."""
    node: Any = config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping):
            return None
        if part not in node:
            close = difflib.get_close_matches(part, [str(k) for k in node], n=1, cutoff=0.85)
            if close:
                prefix = ".".join(parts[:depth])
                return f"{prefix + '.' if prefix else ''}{close[0]}"
            return None
        node = node[part]
    return None


def check_space(parameters: list[Parameter], config: Mapping[str, Any], where: str) -> None:
    """Each key must be one the config can take; one clear line for the first that is not."""
    for param in parameters:
        top = param.key.split(".", 1)[0]
        if top not in TOP_LEVEL:
            close = difflib.get_close_matches(top, TOP_LEVEL, n=1, cutoff=0.6)
            raise ConfigError(
                f"{where}: {param.key}: the config has no section {top!r}",
                hint=f"did you mean {close[0]}?" if close else f"sections: {', '.join(TOP_LEVEL)}",
            )
        near = _near_miss(config, param.key)
        if near is not None:
            raise ConfigError(f"{where}: {param.key} is not in the config", hint=f"did you mean {near}?")
        for value in param.examples():
            try:
                check_config(apply(config, {param.key: value}))
            except ConfigError as err:
                raise ConfigError(f"{where}: {param.key}: {err.message}", hint=err.hint) from err
