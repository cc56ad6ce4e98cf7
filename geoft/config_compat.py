"""Read CLI config files and make TerraTorch-shaped configs work unchanged.

* ``terratorch.X.Y`` names become ``geoft.X.Y`` (with a notice); names geoft does not have are an
  error that says what to use instead.
* Short class names (``SemanticSegmentationTask``, ``GenericNonGeoSegmentationDataModule``)
  resolve to their full geoft paths.
* Top-level keys only the reference's CLI knows (``out_dtype``, ``output_file_prefix``,
  ``deploy_config_file``) are dropped with a notice.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from geoft.errors import ConfigError

_GEOFT_PACKAGES = ("geoft.tasks", "geoft.datamodules", "geoft.models")
_IGNORED_TOP_LEVEL = {
    "out_dtype": "class maps are written as uint8 with a colour table, other outputs as float32",
    "output_file_prefix": "prediction files are named <input stem>_pred.tif",
    "deploy_config_file": "geoft always writes deploy_config.yaml into the run folder",
}


def _exports(package: str) -> dict[str, str]:
    module = importlib.import_module(package)
    return dict(getattr(module, "_EXPORTS", {}))


def short_name_table() -> dict[str, str]:
    """Short class name -> full geoft path, for geoft's tasks, datamodules and models."""
    table: dict[str, str] = {}
    for package in _GEOFT_PACKAGES:
        for name in _exports(package):
            table.setdefault(name, f"{package}.{name}")
    return table


def _resolvable(path: str) -> bool:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        return False
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    try:
        getattr(module, attr)
    except AttributeError:
        return False
    return True


def resolve_name(name: str, notice: Callable[[str], None]) -> str:
    """Map a ``class_path``: ``terratorch.*`` -> ``geoft.*``, short geoft names -> full paths."""
    table = short_name_table()
    if name.startswith("terratorch."):
        rest = name[len("terratorch.") :]
        short = rest.rpartition(".")[2]
        candidates = [f"geoft.{rest}"] + ([table[short]] if short in table else [])
        for candidate in candidates:
            if _resolvable(candidate):
                notice(f"using {candidate} for {name}")
                return candidate
        raise ConfigError(
            f"{name} has no geoft equivalent",
            hint=f"use one of {', '.join(sorted(table))} (geoft's generic datamodules read any GeoTIFF dataset)",
        )
    if "." not in name and name in table:
        return table[name]
    return name


def translate(config: Any, notice: Callable[[str], None], top_level: bool = True) -> Any:
    """Return a copy of a parsed config with geoft class paths and reference-only keys removed."""
    if isinstance(config, dict):
        out: dict[str, Any] = {}
        for key, value in config.items():
            if top_level and key in _IGNORED_TOP_LEVEL:
                notice(f"ignoring {key}: {_IGNORED_TOP_LEVEL[key]}")
                continue
            if top_level and key == "custom_modules_path" and value:
                raise ConfigError(
                    "custom_modules_path is not supported",
                    hint="install your module as a package (or put it on PYTHONPATH) and use its full class_path",
                )
            if top_level and key == "custom_modules_path":
                continue
            if key == "class_path" and isinstance(value, str):
                out[key] = resolve_name(value, notice)
            elif isinstance(value, str) and value.startswith("terratorch."):
                out[key] = resolve_name(value, notice)
            else:
                out[key] = translate(value, notice, top_level=False)
        return out
    if isinstance(config, list):
        return [translate(item, notice, top_level=False) for item in config]
    return config


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


def rewrite_config_args(argv: list[str], notice: Callable[[str], None]) -> list[str]:
    """Replace every ``-c/--config FILE`` in ``argv`` by the translated config's YAML text.

    jsonargparse accepts config content in place of a path, so nothing is written to disk.
    """
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
            out.append(arg)
            i += 1
            continue
        translated = translate(load_config(value), notice)
        out += ["--config", yaml.safe_dump(translated, sort_keys=False)]
    return out


def config_paths(argv: list[str]) -> list[str]:
    """The ``-c/--config`` file paths in ``argv``, in order."""
    paths = []
    for i, arg in enumerate(argv):
        if arg in ("-c", "--config") and i + 1 < len(argv):
            paths.append(argv[i + 1])
        elif arg.startswith("--config="):
            paths.append(arg.split("=", 1)[1])
    return paths
