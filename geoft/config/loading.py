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
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping at the top level, got {type(data).__name__}"
        )
    return data


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
    from geoft.config.compat import translate

    if not paths:
        raise ConfigError("this command needs a config: -c config.yaml")
    return translate(merge_configs([load_config(p) for p in paths]), notice)


def rewrite_config_args(argv: list[str], notice: Callable[[str], None]) -> list[str]:
    """Replace every ``-c/--config FILE`` in ``argv`` by the translated, checked config's YAML text.

    jsonargparse accepts config content in place of a path, so nothing is written to disk. Each
    config and each ``--section.key`` override is checked first (:mod:`geoft.config.checks`), so a
    typo or a class that cannot be built is one short message.
    """
    from geoft.config.checks import check_config, check_dotted_override
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
        translated = translate(load_config(value), notice)
        check_config(translated)
        out += ["--config", yaml.safe_dump(translated, sort_keys=False)]
    return out
