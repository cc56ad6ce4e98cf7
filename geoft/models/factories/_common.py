"""Argument handling shared by the model factories: task names, prefixed keywords, conflicts."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from geoft.errors import ConfigError
from geoft.task_kinds import DENSE_AND_IMAGE_KINDS, PIXEL_KINDS, TaskKind

PIXEL_TASKS: tuple[TaskKind, ...] = PIXEL_KINDS
CLASS_TASKS: tuple[TaskKind, ...] = (TaskKind.CLASSIFICATION, TaskKind.MULTILABEL_CLASSIFICATION)
TASKS: tuple[TaskKind, ...] = DENSE_AND_IMAGE_KINDS


def check_task(
    task: str | TaskKind, supported: Iterable[TaskKind] = TASKS, factory: str = "factory"
) -> TaskKind:
    """Normalise and validate a task name (a :class:`~geoft.task_kinds.TaskKind` value or alias)."""
    return TaskKind.parse(task, supported, factory)


def split_prefixed(
    extra: Mapping[str, Any], prefixes: Iterable[str], known: Iterable[str], where: str
) -> dict[str, dict[str, Any]]:
    """Route ``<prefix>_<name>`` keywords to ``{prefix: {name: value}}``; anything else is an error."""
    prefixes = list(prefixes)
    routed: dict[str, dict[str, Any]] = {p: {} for p in prefixes}
    unknown = []
    for key, value in extra.items():
        for prefix in prefixes:
            if key.startswith(prefix + "_") and len(key) > len(prefix) + 1:
                routed[prefix][key[len(prefix) + 1 :]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        names = list(known)
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"{where} got unknown argument(s): {', '.join(parts)}",
            hint=f"arguments are {', '.join(names)}, or keys prefixed with "
            + ", ".join(p + "_" for p in prefixes)
            + " (passed to that part)",
        )
    return routed


def merge_kwargs(
    explicit: Mapping[str, Any] | None, prefixed: Mapping[str, Any], part: str
) -> dict[str, Any]:
    """``{part}_kwargs`` wins over ``{part}_*`` keywords; a key given both ways warns."""
    merged = dict(prefixed)
    for key, value in (explicit or {}).items():
        if key in merged and merged[key] != value:
            warnings.warn(
                f"{part}_{key}={merged[key]!r} is overridden by {part}_kwargs[{key!r}]={value!r}",
                UserWarning,
                stacklevel=3,
            )
        merged[key] = value
    return merged
