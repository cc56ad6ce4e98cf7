"""Errors that geoft raises for bad input. Each carries a message a user can act on.

The app and the CLI catch :class:`GeoftError` and show its message instead of a traceback.
"""

from __future__ import annotations


class GeoftError(Exception):
    """Base class for every error geoft raises on purpose.

    Args:
        message: what went wrong, in the user's terms.
        hint: what to do about it (optional).
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


class ConfigError(GeoftError, ValueError):
    """An argument or config value is invalid (unknown name, wrong type, unused keyword...)."""


class RegistryError(ConfigError, KeyError):
    """A name is not in a registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return Exception.__str__(self)


class DataError(GeoftError, ValueError):
    """A dataset on disk is unusable: missing files, corrupt rasters, mismatched labels..."""


class CheckpointError(GeoftError, RuntimeError):
    """A checkpoint cannot be loaded into the requested model."""


class OfflineError(GeoftError, ConnectionError):
    """Something had to be downloaded but the machine is offline."""


class ExportError(GeoftError, RuntimeError):
    """A model could not be exported, or the exported file disagrees with PyTorch."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (libraries' messages run on)."""
    return str(err).splitlines()[0] if str(err) else ""


class NotAllowedError(GeoftError, PermissionError):
    """The logged-in user may not do this (e.g. stop or delete another user's run)."""


class StorageError(GeoftError):
    """An output could not be written: the disk is full, a file-size limit, a read-only folder..."""


def find_geoft_error(err: BaseException) -> GeoftError | None:
    """The first :class:`GeoftError` in ``err``'s cause/context chain (libraries wrap them)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, GeoftError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
