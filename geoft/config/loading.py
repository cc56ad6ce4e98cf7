"""Read YAML config files: the one loader every command and the app use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from geoft.errors import ConfigError


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file (a clear error when it is missing or not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {_first_line(err)}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping at the top level, got {type(data).__name__}"
        )
    return data


def _first_line(err: yaml.YAMLError) -> str:
    """The problem and where: ``mapping values are not allowed here (line 127, column 22)``."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def merge_configs(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """Later configs override earlier ones, recursively for mappings (as repeated ``-c`` options do)."""
    merged: dict[str, Any] = {}
    for config in configs:
        merged = _merge(merged, config)
    return merged


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_configs(paths: list[str], notice: Callable[[str], None]) -> dict[str, Any]:
    """Read, merge and translate (TerraTorch names, band intervals...) the ``-c`` files of a command."""
    from geoft.config.checks import check_lightning_cli_shape
    from geoft.config.compat import translate

    if not paths:
        raise ConfigError("this command needs a config: -c config.yaml")
    configs = [load_config(p) for p in paths]
    for path, config in zip(paths, configs, strict=True):
        check_lightning_cli_shape(config, f"config file {path}")
    return translate(merge_configs(configs), notice)


def rewrite_config_args(argv: list[str], notice: Callable[[str], None]) -> list[str]:
    """Replace every ``-c/--config FILE`` in ``argv`` by the translated, checked config's YAML text.

    jsonargparse accepts config content in place of a path, so nothing is written to disk. Each
    config and each ``--section.key`` override is checked first (:mod:`geoft.config.checks`), so a
    typo or a class that cannot be built is one short message.
    """
    from geoft.config.checks import check_config, check_dotted_override, check_lightning_cli_shape
    from geoft.config.compat import translate

    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        value: str | None = None
        if arg in ("-c", "--config"):
            if i + 1 >= len(argv):
                raise ConfigError(f"{arg} needs a config file path")
            value, i = argv[i + 1], i + 2
        elif arg.startswith("--config="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            check_dotted_override(arg)
            out.append(arg)
            i += 1
            continue
        raw = load_config(value)
        check_lightning_cli_shape(raw, f"config file {value}")
        translated = translate(raw, notice)
        check_config(translated)
        out += ["--config", yaml.safe_dump(translated, sort_keys=False)]
    return out
