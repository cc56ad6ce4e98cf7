"""Configs that come from the web may only instantiate classes from allowed packages.

A jsonargparse/LightningCLI config can name any importable class (``class_path``); from a browser
that would be remote code execution (``os.system``...). This check walks the config before it is
saved or run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
