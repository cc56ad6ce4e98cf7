"""Safe handling of uploaded files: zips checked for zip-slip and zip bombs, names sanitised.

Uploads are streamed: a Streamlit ``UploadedFile`` already holds the whole file in memory once, so it
is read in chunks of :data:`CHUNK_BYTES` (written to disk, or read by ``zipfile`` in place), never
copied whole with ``getvalue()``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from geoft.errors import DataError

MAX_ENTRIES = 20_000
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_RATIO = 200.0
CHUNK_BYTES = 1 << 20

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class UnsafeArchiveError(DataError):
    """An uploaded archive is malformed or dangerous (path escape, links, zip bomb)."""


@dataclass(frozen=True)
class ZipLimits:
    """Limits on what one uploaded zip may expand to."""

    max_entries: int = MAX_ENTRIES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_ratio: float = MAX_RATIO


def safe_filename(name: str) -> str:
    """A file name without folders or odd characters (for single uploaded files)."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).strip("._")
    if not cleaned:
        raise DataError(f"uploaded file name {name!r} has no usable characters", hint="rename the file")
    return cleaned


def upload_limit_text(max_upload_mb: int, instead: str = "") -> str:
    """The size limit of one upload (Streamlit's ``server.maxUploadSize``), as the pages show it."""
    text = (
        f"Up to {max_upload_mb} MB per file (Streamlit's `server.maxUploadSize`, set in "
        "`.streamlit/config.toml` by whoever runs the server)."
    )
    return f"{text} {instead}" if instead else text


def copy_upload(source: BinaryIO, target: Path, max_bytes: int | None = None) -> int:
    """Stream ``source`` from its start into ``target`` in chunks; return the bytes written.

    The file appears under its name only when complete (written beside it, then renamed), so a reader
    never sees half an upload. More than ``max_bytes`` is refused and nothing is left behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.seekable():
        source.seek(0)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    written = 0
    try:
        with open(partial, "wb") as out:
            while chunk := source.read(CHUNK_BYTES):
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    raise UnsafeArchiveError(
                        f"upload {target.name} exceeds the size limit of {max_bytes / 1e9:.2f} GB",
                        hint="copy large data onto the server into a data root instead of uploading",
                    )
                out.write(chunk)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


def _member_target(info: zipfile.ZipInfo, dest: Path) -> Path | None:
    name = info.filename.replace("\\", "/")
    pure = PurePosixPath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in pure.parts:
        raise UnsafeArchiveError(
            f"archive entry {info.filename!r} points outside the extraction folder (zip-slip)",
            hint="re-create the zip with relative paths only",
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(f"archive entry {info.filename!r} is a symbolic link; links are not allowed")
    if any(part.startswith("__MACOSX") for part in pure.parts) or pure.name == ".DS_Store":
        return None
    target = (dest / pure).resolve()
    if target != dest and dest not in target.parents:
        raise UnsafeArchiveError(f"archive entry {info.filename!r} escapes the extraction folder")
    return target


def check_zip(archive: zipfile.ZipFile, limits: ZipLimits) -> None:
    """Refuse archives with too many entries, too much content, or suspicious compression ratios."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeArchiveError(
            f"archive has {len(infos)} entries; the limit is {limits.max_entries}",
            hint="split the dataset or copy it onto the server into a data root",
        )
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise UnsafeArchiveError(
            f"archive expands to {total / 1e9:.2f} GB; the limit is {limits.max_total_bytes / 1e9:.2f} GB",
            hint="copy large datasets onto the server into a data root instead of uploading",
        )
    for info in infos:
        if (
            info.compress_size > 0
            and info.file_size / info.compress_size > limits.max_ratio
            and info.file_size > 1_000_000
        ):
            raise UnsafeArchiveError(
                f"archive entry {info.filename!r} compresses {info.file_size / info.compress_size:.0f}:1 "
                "(looks like a zip bomb)",
            )


def extract_zip(
    source: str | Path | BinaryIO | bytes, dest: Path, limits: ZipLimits | None = None
) -> list[Path]:
    """Extract a zip into ``dest`` after checking every entry; return the extracted files.

    Counts real bytes while writing, so a lying header cannot exceed the total limit.
    """
    limits = limits or ZipLimits()
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile as err:
        raise UnsafeArchiveError(f"the upload is not a valid zip file ({err})") from err
    written: list[Path] = []
    with archive:
        check_zip(archive, limits)
        targets = [(info, _member_target(info, dest)) for info in archive.infolist()]
        budget = limits.max_total_bytes
        for info, target in targets:
            if target is None:
                continue
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    budget -= len(chunk)
                    if budget < 0:
                        raise UnsafeArchiveError("archive content exceeds the size limit while extracting")
                    out.write(chunk)
            written.append(target)
    return written


def save_files(
    files: Iterable[tuple[str, BinaryIO]], dest: Path, max_total_bytes: int = MAX_TOTAL_BYTES
) -> list[Path]:
    """Stream uploaded ``(name, file)`` pairs into ``dest``, keeping relative sub-folders safe."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    out = []
    total = 0
    for name, content in files:
        parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "/")]
        if not parts or any(p == ".." for p in parts):
            raise UnsafeArchiveError(f"uploaded file name {name!r} is not a safe relative path")
        target = dest.joinpath(*parts[:-1], safe_filename(parts[-1])).resolve()
        if dest not in target.parents:
            raise UnsafeArchiveError(f"uploaded file name {name!r} escapes the upload folder")
        try:
            total += copy_upload(content, target, max_bytes=max_total_bytes - total)
        except UnsafeArchiveError as err:
            raise UnsafeArchiveError(
                f"uploaded files exceed the size limit of {max_total_bytes / 1e9:.2f} GB in total", err.hint
            ) from err
        out.append(target)
    return out


def dataset_root_of(folder: Path) -> Path:
    """The folder that holds the data: descend through single wrapper folders left by zipping."""
    current = Path(folder)
    while True:
        children = [c for c in current.iterdir() if not c.name.startswith(".") and c.name != "__MACOSX"]
        if len(children) == 1 and children[0].is_dir():
            current = children[0]
            continue
        return current


def remove_tree(folder: Path) -> None:
    """Delete a folder tree (used to clean up a refused upload)."""
    shutil.rmtree(folder, ignore_errors=True)


def _unique_folder(parent: Path, name: str) -> Path:
    candidate, n = parent / name, 2
    while candidate.exists():
        candidate, n = parent / f"{name}-{n}", n + 1
    return candidate


def extract_dataset_zip(
    source: Path | BinaryIO, uploads_dir: Path, name: str, limits: ZipLimits | None = None
) -> Path:
    """Extract an uploaded dataset zip (a path, or a seekable file such as Streamlit's ``UploadedFile``,
    read in place) to ``uploads_dir/<name>`` (``<name>-2``... when taken) and return that folder. A zip
    of a folder ``x/`` lands in ``uploads/x``, not ``uploads/x/x``."""
    uploads_dir = Path(uploads_dir)
    uploads_dir.mkdir(parents=True, exist_ok=True)
    incoming = _unique_folder(uploads_dir, f".incoming-{safe_filename(name)}")
    try:
        if not isinstance(source, Path) and source.seekable():
            source.seek(0)
        extract_zip(source, incoming, limits)
        root = dataset_root_of(incoming)
        if not any(root.iterdir()):
            raise DataError("the zip holds no files", hint="zip the dataset folder itself")
        final = _unique_folder(uploads_dir, safe_filename(name))
        shutil.move(str(root), str(final))
        return final
    finally:
        remove_tree(incoming)
