"""Turn wrong keyword arguments to a backbone builder into a :class:`~geoft.errors.ConfigError`.

Builders have explicit, typed signatures. Python's own ``TypeError`` for an unknown keyword gives
no hint; the wrapper here names the bad argument, suggests close ones and lists the valid ones.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from geoft.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def unknown_arguments_message(where: str, unknown: list[str], valid: list[str]) -> str:
    """Message for keyword arguments that ``where`` does not take."""
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
        parts.append(f"{name!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
    return f"{where} got unknown argument(s) {', '.join(parts)}. Valid arguments: {', '.join(valid)}."


def checked_arguments(func: F) -> F:
    """Decorator: call ``func`` only if its arguments bind to its signature, else raise ConfigError."""
    signature = inspect.signature(func)
    valid = [p.name for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as err:
            unknown = [k for k in kwargs if k not in valid]
            if unknown:
                raise ConfigError(unknown_arguments_message(func.__name__, unknown, valid)) from err
            raise ConfigError(f"{func.__name__}: {err}") from err
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
