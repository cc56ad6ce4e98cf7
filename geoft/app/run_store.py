"""The run store: one SQLite database (WAL mode) next to the runs folder, shared by every session.

Transactions are short; writers wait on a busy timeout and retry on ``database is locked``, so
several Streamlit sessions, workers and CLIs can use it at once.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from geoft.errors import ConfigError
from geoft.runs.folder import RunDir

T = TypeVar("T")

QUEUED, RUNNING, COMPLETED, FAILED, STOPPED, INTERRUPTED, CANCELLED = (
    "queued",
    "running",
    "completed",
    "failed",
    "stopped",
    "interrupted",
    "cancelled",
)
ACTIVE_STATUSES = (QUEUED, RUNNING)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    device TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    pid_start INTEGER,
    exit_code INTEGER,
    error TEXT,
    resume_ckpt TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    best_metrics TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, device, created);
"""

# Columns added after the first release: (name, SQL type). Older stores get them on first open.
_ADDED_COLUMNS = (("owner", "TEXT"),)


@dataclass
class RunRecord:
    """One row of the run store; its files are those of :attr:`folder`."""

    id: str
    name: str
    status: str
    device: str
    run_dir: Path
    created: float
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    pid_start: int | None = None
    exit_code: int | None = None
    error: str | None = None
    resume_ckpt: str | None = None
    stop_requested: bool = False
    best_metrics: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    attempts: int = 0
    owner: str | None = None  # the logged-in user who submitted it; None without login (or older stores)

    @property
    def folder(self) -> RunDir:
        """The run folder ``geoft fit`` writes into."""
        return RunDir(self.run_dir)

    @property
    def submitted_config_path(self) -> Path:
        """The config the app handed to ``geoft fit``."""
        return self.folder.submitted_config

    @property
    def config_path(self) -> Path:
        """The resolved config ``geoft fit`` saved (every default filled in), else the submitted one."""
        resolved = self.folder.config
        return resolved if resolved.is_file() else self.submitted_config_path

    @property
    def log_path(self) -> Path:
        return self.folder.log

    @property
    def duration(self) -> float | None:
        """Seconds spent running (until now when still running)."""
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRecord:
        data = dict(row)
        data["run_dir"] = Path(data["run_dir"])
        data["stop_requested"] = bool(data["stop_requested"])
        data["best_metrics"] = json.loads(data["best_metrics"] or "{}")
        data["tags"] = json.loads(data["tags"] or "[]")
        return cls(**data)


def new_run_id(name: str = "") -> str:
    """A sortable, unique id: ``20260101-120000-<name>-ab12``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())[:32].strip("-")
    return f"{stamp}-{slug}-{secrets.token_hex(2)}" if slug else f"{stamp}-{secrets.token_hex(2)}"


class RunStore:
    """SQLite-backed table of runs.

    Args:
        path: the database file (created with its folder when missing).
        busy_timeout_s: how long a writer waits for the lock before retrying.
    """

    _UPDATABLE = frozenset(
        {
            "name",
            "status",
            "device",
            "started",
            "finished",
            "pid",
            "pid_start",
            "exit_code",
            "error",
            "resume_ckpt",
            "stop_requested",
            "best_metrics",
            "tags",
            "attempts",
        }
    )

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            outdated = bool(self._missing_columns(conn))  # checked without taking the write lock
        if outdated:  # a store written by an older geoft
            self.retrying(self._migrate)

    @staticmethod
    def _missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        present = {row["name"] for row in conn.execute("PRAGMA table_info(runs)")}
        return [(name, sql_type) for name, sql_type in _ADDED_COLUMNS if name not in present]

    def _migrate(self) -> None:
        """Add the columns a store created by an older geoft lacks (its rows keep NULL there)."""
        with self.transaction() as conn:  # the write lock: two processes opening at once add each once
            for name, sql_type in self._missing_columns(conn):
                conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {sql_type}")

    # -- connections --------------------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode; use :meth:`transaction` for grouped writes."""
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock at once, so read-check-write is atomic."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def retrying(self, fn: Callable[[], T], attempts: int = 8) -> T:
        """Run ``fn`` again when SQLite reports the database locked (beyond the busy timeout)."""
        delay = 0.05
        for attempt in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err) or attempt == attempts - 1:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    # -- rows ---------------------------------------------------------------------------------
    def add(
        self,
        run_id: str,
        name: str,
        run_dir: Path,
        device: str,
        tags: list[str] | None = None,
        status: str = QUEUED,
        owner: str | None = None,
    ) -> RunRecord:
        """Insert a new run (``queued`` by default), owned by ``owner`` (None: no login)."""

        def op() -> None:
            with self.connect() as conn:
                conn.execute(
                    "INSERT INTO runs (id, name, status, device, run_dir, created, tags, owner)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, name, status, device, str(run_dir), time.time(), json.dumps(tags or []), owner),
                )

        try:
            self.retrying(op)
        except sqlite3.IntegrityError as err:
            raise ConfigError(f"a run with id {run_id!r} already exists") from err
        return self.get(run_id)

    def get(self, run_id: str, conn: sqlite3.Connection | None = None) -> RunRecord:
        """The run with this id (read inside ``conn``'s transaction when given); :class:`ConfigError` when unknown."""
        if conn is None:
            with self.connect() as own:
                return self.get(run_id, own)
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ConfigError(
                f"no run with id {run_id!r} in {self.path}", hint="pick a run from the Runs page"
            )
        return RunRecord.from_row(row)

    def list(
        self,
        status: str | tuple[str, ...] | None = None,
        tag: str | None = None,
        conn: sqlite3.Connection | None = None,
        oldest_first: bool = False,
    ) -> list[RunRecord]:
        """Runs, newest first (or oldest first), optionally filtered by status(es) and tag.

        ``conn`` reads inside that connection's transaction (a check before a write).
        """
        if conn is None:
            with self.connect() as own:
                return self.list(status, tag, own, oldest_first)
        query, params = "SELECT * FROM runs", []
        if status is not None:
            wanted = (status,) if isinstance(status, str) else tuple(status)
            query += f" WHERE status IN ({','.join('?' * len(wanted))})"
            params.extend(wanted)
        query += " ORDER BY created, id" if oldest_first else " ORDER BY created DESC, id DESC"
        runs = [RunRecord.from_row(r) for r in conn.execute(query, params).fetchall()]
        return [r for r in runs if tag in r.tags] if tag else runs

    def update(self, run_id: str, conn: sqlite3.Connection | None = None, **fields: Any) -> None:
        """Set columns of a run. Unknown column names are an error."""
        unknown = set(fields) - self._UPDATABLE
        if unknown:
            raise ConfigError(f"unknown run-store fields: {sorted(unknown)}")
        values = {k: json.dumps(v) if k in ("best_metrics", "tags") else v for k, v in fields.items()}
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?"
        params = (*values.values(), run_id)
        if conn is not None:
            conn.execute(sql, params)
            return

        def op() -> None:
            with self.connect() as c:
                c.execute(sql, params)

        self.retrying(op)

    def delete(self, run_id: str) -> None:
        """Remove a run's row (the caller removes its folder)."""

        def op() -> None:
            with self.connect() as conn:
                conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

        self.retrying(op)
