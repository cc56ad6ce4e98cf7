"""Configs that come from the web may only instantiate classes from allowed packages.

A jsonargparse/LightningCLI config can name any importable class (``class_path``); from a browser
that would be remote code execution (``os.system``...). This check walks the config before it is
saved or run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from geoft.errors import ConfigError

ALLOWED_PACKAGES: tuple[str, ...] = (
    "geoft",
    "torch",
    "lightning",
    "torchgeo",
    "timm",
    "torchmetrics",
    "kornia",
    "albumentations",
    "segmentation_models_pytorch",
)

_CLASS_KEYS = ("class_path", "_target_", "callable", "init_callable")


def _walk(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key in _CLASS_KEYS and isinstance(value, str):
                yield here, value
            yield from _walk(value, here)
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}[{i}]")


def _allowed(path: str, packages: Iterable[str]) -> bool:
    top = path.replace(":", ".").split(".", 1)[0].strip()
    # A bare name ("UperNetDecoder") resolves inside geoft's own registries/modules.
    if "." not in path and ":" not in path:
        return path.isidentifier()
    return top in packages


def check_class_paths(config: dict[str, Any], allowed: Iterable[str] = ALLOWED_PACKAGES) -> None:
    """Raise :class:`ConfigError` if any ``class_path`` in ``config`` lies outside ``allowed`` packages."""
    allowed = tuple(allowed)
    bad = [(where, value) for where, value in _walk(config, "") if not _allowed(value, allowed)]
    if bad:
        listing = "; ".join(f"{where} = {value!r}" for where, value in bad[:5])
        raise ConfigError(
            f"the config names classes outside the allowed packages: {listing}",
            hint=f"configs from the web app may only use classes from: {', '.join(allowed)}",
        )


# Keys whose values name paths even when they carry no slash ("data", "model.ckpt").
_PATH_KEY_SUFFIXES = ("_root", "_split", "_dir", "_path", "_file", "dirpath", "filename")
_NOT_PATH_KEYS = (*_CLASS_KEYS, "img_grep", "label_grep", "image_grep", "time_grep")  # names, globs


def looks_like_path(value: str) -> bool:
    """Whether a config string names a file or folder: it has a path separator, starts with ``~`` or
    ``.``, or is a ``file:`` URL. Class paths (dots only), names and numbers do not."""
    text = value.strip()
    if not text or text.isidentifier():
        return False
    if text.startswith("file:"):
        return True
    if "://" in text:  # other URLs are not local paths (and downloads are refused elsewhere)
        return False
    return "/" in text or "\\" in text or text.startswith(("~", "."))


def _path_values(node: Any, where: str, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for child_key, value in node.items():
            here = f"{where}.{child_key}" if where else str(child_key)
            yield from _path_values(value, here, str(child_key))
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from _path_values(value, f"{where}[{i}]", key)
    elif isinstance(node, str) and key not in _NOT_PATH_KEYS:
        if looks_like_path(node) or (key.endswith(_PATH_KEY_SUFFIXES) and node.strip()):
            yield where, node.removeprefix("file://").removeprefix("file:")


def check_config_paths(config: dict[str, Any], roots: Sequence[Path], skip: Iterable[str] = ()) -> None:
    """Raise :class:`ConfigError` if any path in a web config, under any key, points outside the app's
    data and run roots.

    Paths are found by value (:func:`looks_like_path`), at any depth and in lists, and by key for
    values without a slash (``*_root``, ``*_split``, ``*_dir``, ``*_path``, ``*_file``, ``dirpath``, ``filename``).
    """
    from geoft.app.paths import PathNotAllowedError, confine

    skipped = set(skip)
    bad = []
    for where, value in _path_values(config, ""):
        if where in skipped or not value:
            continue
        try:
            confine(value, roots)
        except PathNotAllowedError:
            bad.append(f"{where} = {value!r}")
    if bad:
        raise ConfigError(
            f"the config reads or writes outside the app's folders: {'; '.join(bad[:5])}",
            hint="use paths inside: " + ", ".join(str(r) for r in roots),
        )
