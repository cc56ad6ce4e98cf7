"""Uploads are streamed to disk in chunks: never ``getvalue()``, never one read of the whole file."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from geoft.app.uploads import (
    CHUNK_BYTES,
    UnsafeArchiveError,
    copy_upload,
    extract_dataset_zip,
    save_files,
    upload_limit_text,
)


class GuardedUpload(io.BytesIO):
    """Like Streamlit's UploadedFile (a BytesIO), but fails on a whole copy and records read sizes."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def getvalue(self) -> bytes:  # what the pages used to call: a second whole copy
        raise AssertionError("getvalue() copies the whole upload")

    def getbuffer(self):  # noqa: ANN201
        raise AssertionError("getbuffer() exposes the whole upload")

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            remaining = len(super().getbuffer()) - self.tell()
            if remaining > CHUNK_BYTES:
                raise AssertionError(f"read() of the whole rest ({remaining} bytes)")
        data = super().read(size)
        self.reads.append(len(data))
        return data


SIZE = 3 * CHUNK_BYTES + 123


def test_copy_upload_streams_in_chunks_and_replaces_atomically(tmp_path: Path):
    payload = os.urandom(SIZE)
    upload = GuardedUpload(payload)
    upload.seek(100)  # Streamlit may hand it over read part-way: the copy starts at the beginning
    target = tmp_path / "scenes" / "scene.tif"
    assert copy_upload(upload, target) == SIZE
    assert target.read_bytes() == payload
    assert max(upload.reads) <= CHUNK_BYTES and len(upload.reads) >= 4
    assert [p.name for p in target.parent.iterdir()] == ["scene.tif"]  # no partial file left

    with pytest.raises(UnsafeArchiveError, match="exceeds the size limit"):
        copy_upload(GuardedUpload(payload), tmp_path / "scenes" / "big.tif", max_bytes=CHUNK_BYTES)
    assert [p.name for p in target.parent.iterdir()] == ["scene.tif"]


def test_folder_upload_streams_each_file_and_keeps_the_total_limit(tmp_path: Path):
    files = [("ds/images/a.tif", GuardedUpload(os.urandom(SIZE))), ("ds/labels/a.tif", GuardedUpload(b"l"))]
    out = save_files(files, tmp_path / "up")
    assert [p.stat().st_size for p in out] == [SIZE, 1]
    assert max(files[0][1].reads) <= CHUNK_BYTES
    with pytest.raises(UnsafeArchiveError, match="in total"):
        save_files([("a", GuardedUpload(b"x" * 10)), ("b", GuardedUpload(b"y" * 10))], tmp_path / "o", 15)


def test_dataset_zip_is_read_in_place_from_the_upload(tmp_path: Path):
    buf = io.BytesIO()
    member = os.urandom(SIZE)  # incompressible: stored at full size
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("ds/train/images/a.tif", member)
        zf.writestr("ds/val/images/b.tif", b"b")
    upload = GuardedUpload(buf.getbuffer().tobytes())
    root = extract_dataset_zip(upload, tmp_path / "uploads", "ds")
    assert (root / "train" / "images" / "a.tif").read_bytes() == member
    assert max(upload.reads) <= CHUNK_BYTES


def test_the_limit_text_names_the_setting():
    text = upload_limit_text(2048, "Larger: copy it into a data root.")
    assert "2048 MB per file" in text and "server.maxUploadSize" in text and text.endswith("data root.")
