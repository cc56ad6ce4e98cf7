"""Plain errors when an output cannot be written: a full disk, a file-size limit, a read-only or missing folder.

Writers (checkpoints, ``metrics.jsonl``, scene predictions) turn the low-level ``OSError`` (or the
error a library raised while one was being handled) into a :class:`StorageError` that names the
path and says what to do; the CLI and the app show its message instead of a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from geoft.errors import StorageError

DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
TOO_LARGE = {errno.EFBIG}
UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR}
_KNOWN = DISK_FULL | TOO_LARGE | UNWRITABLE


# GDAL (rasterio) reports write errors as text such as "_tiffWriteProc: No space left on device."
_MESSAGES = {os.strerror(code): code for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)}


def find_os_error(err: BaseException) -> OSError | None:
    """The first storage ``OSError`` in ``err``'s cause/context chain (libraries wrap them).

    An error whose message carries the system's text for a full disk, a too large file or a read-only
    file system (GDAL's) counts as one too.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in _KNOWN:
            return current
        text = str(current)
        for message, code in _MESSAGES.items():
            if message in text:
                return OSError(code, message)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path.cwd()


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent folder)."""
    try:
        return shutil.disk_usage(_existing_parent(Path(path).absolute())).free
    except OSError:
        return None


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def describe(os_err: OSError, path: str | Path, what: str, note: str = "") -> StorageError:
    """A :class:`StorageError` for ``os_err`` raised while writing ``what`` at ``path``.

    ``note`` is added to the message (e.g. that earlier outputs are intact).
    """
    path = Path(path)
    code = os_err.errno
    note = f". {note}" if note else ""
    if code in DISK_FULL:
        free = free_bytes(path)
        left = f", {_size(free)} left" if free is not None else ""
        return StorageError(
            f"could not write {what} {path}: the disk is full ({os_err.strerror}{left}){note}",
            hint=f"free space on the disk holding {_existing_parent(path)}, or write to a folder on a "
            "larger disk (for training: trainer.default_root_dir), then run again (resume from the last "
            "checkpoint)",
        )
    if code in TOO_LARGE:
        return StorageError(
            f"could not write {what} {path}: it is larger than this process may write "
            f"({os_err.strerror}: a file-size limit, see `ulimit -f`, or the file system's maximum "
            f"file size){note}",
            hint="raise the file-size limit or write to a file system that allows larger files",
        )
    if code == errno.EROFS:
        reason = "the file system is read-only"
    elif code in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        reason = "a part of the path is a file, not a folder"
    else:
        reason = os_err.strerror or str(os_err)
    return StorageError(
        f"could not write {what} {path}: {reason} ({os_err.strerror}){note}",
        hint="choose an output folder you can write to",
    )


def storage_error(
    err: BaseException, path: str | Path | None, what: str = "to", note: str = ""
) -> StorageError | None:
    """``err`` as a :class:`StorageError` when a storage ``OSError`` caused it, else ``None``.

    ``path`` is what was being written (default: the file the ``OSError`` names).
    """
    if isinstance(err, StorageError):
        return err
    os_err = find_os_error(err)
    if os_err is None:
        return None
    return describe(os_err, path if path is not None else os_err.filename or ".", what, note)


def temporary_path(path: Path) -> Path:
    """A sibling name to write to before the atomic rename (same folder, so ``os.replace`` is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def ensure_writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create ``path`` (and parents) and check a file can be created in it; raise :class:`StorageError` if not.

    Checked by writing, because permission bits say nothing for root, and a read-only mount or a
    parent that is a regular file only shows when something is written.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".geoft-write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        if isinstance(err, FileExistsError) and not path.is_dir():
            err = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), err.filename)
        found = find_os_error(err)
        if found is None:
            raise
        raise describe(found, path, what) from err
    return path


__all__ = [
    "StorageError",
    "describe",
    "ensure_writable_dir",
    "find_os_error",
    "free_bytes",
    "storage_error",
    "temporary_path",
]
