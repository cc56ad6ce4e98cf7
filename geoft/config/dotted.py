"""Setting a nested config key given as a dotted path (``model.init_args.lr``)."""

from __future__ import annotations

from typing import Any

from geoft.errors import ConfigError


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """``config[a][b][c] = value`` for ``key`` ``a.b.c``, creating missing mappings."""
    parts = key.split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(
                f"{key}: {where} is {child!r} in the config, not a mapping to set {parts[depth + 1]!r} in"
            )
        node = child
    node[parts[-1]] = value
