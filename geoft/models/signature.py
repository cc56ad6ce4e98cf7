"""Check keyword arguments against a constructor's signature before calling it.

Factories forward user arguments to backbones, necks, decoders and heads; an argument nobody takes
must be an error that names it, not a silent no-op or a bare ``TypeError`` deep in a stack.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from geoft.errors import ConfigError


def accepted_kwargs(target: Callable[..., Any], skip: Iterable[str] = ()) -> tuple[list[str], bool]:
    """Names ``target`` takes as keywords (minus ``skip``) and whether it also takes ``**kwargs``."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return [], True
    skipped = set(skip)
    names = [
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skipped and p.name != "self"
    ]
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    return names, var_kw


def check_kwargs(
    target: Callable[..., Any], kwargs: Mapping[str, Any], what: str, skip: Iterable[str] = ()
) -> None:
    """Raise :class:`ConfigError` naming every key of ``kwargs`` that ``target`` does not accept.

    Targets with ``**kwargs`` are trusted to validate their own arguments.
    """
    names, var_kw = accepted_kwargs(target, skip)
    if var_kw:
        return
    unknown = [k for k in kwargs if k not in names]
    if not unknown:
        return
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(
        f"{what} got unknown argument(s): {', '.join(parts)}",
        hint=f"it accepts: {', '.join(names) if names else 'no keyword arguments'}",
    )
