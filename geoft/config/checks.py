"""Check a config's classes and keys before jsonargparse sees them, so each problem is one short line.

jsonargparse reports a bad nested class with a dump of the whole namespace; these checks name the
key, the class and why (unknown name with close matches, a package that is not installed with its
``pip install`` line, an argument the class does not take with "did you mean").
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from functools import cache
from typing import Any

from geoft.config.imports import missing_package, resolve_class
from geoft.errors import ConfigError

_CLASS_SECTIONS = ("model", "data", "optimizer", "lr_scheduler")


def _did_you_mean(name: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f"did you mean {', '.join(close)}?" if close else None


@cache
def _parameters(cls: type) -> tuple[tuple[str, ...], bool]:
    """The keyword names of ``cls``'s constructor and whether it also takes ``**kwargs``."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return (), True
    names = tuple(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def check_keys(keys: list[str], cls: type, where: str) -> None:
    """Every key must be an argument of ``cls`` (unless it takes ``**kwargs``)."""
    names, open_ended = _parameters(cls)
    if open_ended:
        return
    unknown = [str(k) for k in keys if k not in names]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{where}.{key}: {cls.__name__} has no argument {key!r}",
            hint=_did_you_mean(key, list(names)) or f"its arguments: {', '.join(names)}",
        )


def section_class(section: Mapping[str, Any], where: str) -> type:
    """The class of a ``{class_path, init_args}`` section, or one clear error."""
    from geoft.config.compat import short_name_table

    path = section.get("class_path")
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"{where}.class_path is missing or empty")
    path = short_name_table().get(path.strip(), path.strip())
    pip = missing_package(path)
    if pip is not None:
        raise ConfigError(f"{where}: {path} needs a package that is not installed", hint=pip)
    return resolve_class(path, where)


def check_section(section: Any, where: str) -> None:
    """Check one ``{class_path, init_args}`` section (a string class path is checked as a name)."""
    if isinstance(section, str):
        section = {"class_path": section}
    if not isinstance(section, Mapping) or "class_path" not in section:
        return
    unknown = sorted(set(section) - {"class_path", "init_args", "dict_kwargs"})
    if unknown:
        raise ConfigError(
            f"{where} has unknown keys {unknown}", hint="a class section holds class_path and init_args"
        )
    cls = section_class(section, where)
    init_args = section.get("init_args") or {}
    if not isinstance(init_args, Mapping):
        raise ConfigError(f"{where}.init_args must be a mapping, not {type(init_args).__name__}")
    check_keys(list(init_args), cls, f"{where}.init_args")


def _listed(value: Any) -> list[Any]:
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, list) else [value]


def check_trainer(trainer: Any) -> None:
    if not isinstance(trainer, Mapping):
        return
    from lightning.pytorch import Trainer

    check_keys(list(trainer), Trainer, "trainer")
    for i, callback in enumerate(_listed(trainer.get("callbacks"))):
        check_section(callback, f"trainer.callbacks[{i}]")
    loggers = _listed(trainer.get("logger"))
    for i, logger in enumerate(loggers):
        check_section(logger, "trainer.logger" + (f"[{i}]" if len(loggers) > 1 else ""))


def check_lightning_cli_shape(config: Mapping[str, Any], where: str) -> None:
    """A config of another program (the reference's weather scripts, terratorch-iterate) is one line."""
    if "optimization_space" in config or ("defaults" in config and "model" not in config):
        raise ConfigError(
            f"{where} is a terratorch-iterate (hyperparameter search) config, not a LightningCLI config",
            hint="geoft fit takes the config of one run: trainer, model, data, optimizer sections",
        )
    for key in ("model", "data"):
        section = config.get(key)
        if isinstance(section, Mapping) and not {"class_path", "init_args"} & set(section):
            raise ConfigError(
                f"{where} is not a LightningCLI config: its {key} section has no class_path "
                f"(it has {', '.join(map(str, list(section)[:4]))}...)",
                hint="the reference reads such files with its own scripts (e.g. its weather downscaling); "
                "geoft fit needs model: {class_path: ..., init_args: ...}",
            )


def check_config(config: Mapping[str, Any]) -> None:
    """Check a LightningCLI-shaped config: trainer keys, callbacks, loggers and the class sections."""
    check_trainer(config.get("trainer"))
    for key in _CLASS_SECTIONS:
        check_section(config.get(key), key)


def check_dotted_override(arg: str) -> None:
    """``--trainer.max_epoch 3`` on the command line: the trainer key must exist."""
    if not arg.startswith("--trainer."):
        return
    # "callbacks+=..." is jsonargparse's append to a list: the key is "callbacks"
    key = arg[len("--trainer.") :].split("=", 1)[0].split(".", 1)[0].removesuffix("+")
    from lightning.pytorch import Trainer

    check_keys([key], Trainer, "trainer")
