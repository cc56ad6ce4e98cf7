"""``metrics.jsonl``: one JSON object a line, appended whole and flushed, so readers can tail it.

Lines all have ``event`` and ``time`` (Unix seconds):

* ``{"event": "start", "stage": "fit"|"validate"|"test"|"predict", "max_epochs": int|null, "run_dir": str}``
* ``{"event": "metrics", "stage": "train"|"val"|"test", "epoch": int, "step": int, "metrics": {name: float}}``
  (train step metrics every ``log_every_n_steps``; epoch metrics after each train/val/test epoch)
* ``{"event": "checkpoint", "epoch": int, "step": int}`` (a checkpoint is being saved)
* ``{"event": "end", "stage": ..., "status": "finished"|"interrupted"|"failed", "error": str|null,
  "message": str|null, "best_model_path": str|null, "best_model_score": float|null,
  "last_model_path": str|null}``; ``error`` is ``"<ExceptionType>: <text>"``, ``message`` the text a user
  reads (for a :class:`~geoft.errors.GeoftError`, what ``geoft`` prints after ``geoft: error:``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, NoReturn

from geoft.storage import storage_error

EVENT_KINDS = ("start", "checkpoint", "end")


class JsonlWriter:
    """Appends JSON lines to a file, flushing each one so readers can tail it.

    A line that cannot be written whole (disk full) is cut off again, so readers never see half a
    line, and the error is a :class:`~geoft.storage.StorageError` naming the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": round(time.time(), 3), **fields}, default=str)
        data = (line + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as err:
            self._raise(err)
        try:
            start = os.fstat(fd).st_size
            written = 0
            try:
                while written < len(data):
                    written += os.write(fd, data[written:])
            except OSError as err:
                if written:
                    os.ftruncate(fd, start)
                self._raise(err)
        finally:
            os.close(fd)

    def _raise(self, err: OSError) -> NoReturn:
        found = storage_error(err, self.path, "the metrics file")
        if found is None:
            raise err
        raise found from err


def read_lines(path: Path | None, offset: int = 0) -> list[dict[str, Any]]:
    """The JSON objects of a metrics file from byte ``offset`` on; half-written or broken lines are skipped."""
    if path is None or not Path(path).is_file():
        return []
    with open(path, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", errors="replace")
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def read_events(path: Path | None, offset: int = 0) -> list[dict[str, Any]]:
    """The ``start``/``checkpoint``/``end`` lines of a run-folder metrics file."""
    return [rec for rec in read_lines(path, offset) if rec.get("event") in EVENT_KINDS]


def end_event(path: Path | None, offset: int = 0) -> dict[str, Any] | None:
    """The last ``end`` line written after byte ``offset`` (None while running or when the run never started)."""
    ends = [rec for rec in read_events(path, offset) if rec.get("event") == "end"]
    return ends[-1] if ends else None
