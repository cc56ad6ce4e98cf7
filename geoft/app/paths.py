"""Confine file access to configured roots: no ``..``, symlink or absolute-path escapes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from geoft.errors import ConfigError


class PathNotAllowedError(ConfigError):
    """A path from the user points outside the folders the app may touch."""


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def confine(path: str | os.PathLike[str], roots: Sequence[Path], *, must_exist: bool = False) -> Path:
    """Resolve ``path`` (absolute, or relative to the first root) and check it lies inside a root.

    Symlinks are resolved before the check, so a link pointing outside is refused.

    Raises:
        PathNotAllowedError: the resolved path is outside every root, or (``must_exist``) missing.
    """
    if not roots:
        raise PathNotAllowedError("no data roots are configured", hint="set GEOFT_DATA_ROOTS")
    raw = os.fspath(path)
    if "\x00" in raw:
        raise PathNotAllowedError(f"path {raw!r} contains a NUL byte")
    resolved_roots = [Path(r).resolve() for r in roots]
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = resolved_roots[0] / candidate
    resolved = candidate.resolve()
    if not any(_is_within(resolved, root) for root in resolved_roots):
        allowed = ", ".join(str(r) for r in resolved_roots)
        raise PathNotAllowedError(
            f"{raw!r} is outside the folders this app may use",
            hint=f"choose a path inside: {allowed} (set GEOFT_DATA_ROOTS to allow more)",
        )
    if must_exist and not resolved.exists():
        raise PathNotAllowedError(f"{raw!r} does not exist", hint="pick an existing folder or file")
    return resolved


def list_subdirs(folder: Path, roots: Sequence[Path]) -> list[Path]:
    """Sub-folders of ``folder`` (confined), sorted, hidden ones left out; escaping links dropped."""
    base = confine(folder, roots, must_exist=True)
    out = []
    for child in sorted(base.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        try:
            out.append(confine(child, roots))
        except PathNotAllowedError:
            continue
    return out


def relative_label(path: Path, roots: Sequence[Path]) -> str:
    """A short label for ``path``: ``<root name>/<relative path>``."""
    for root in roots:
        root = Path(root).resolve()
        if _is_within(path, root):
            rel = path.relative_to(root)
            return f"{root.name}/{rel}" if str(rel) != "." else root.name
    return str(path)
