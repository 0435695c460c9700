"""Traces on disk: one SQLite file, ``home/traces.sqlite``, one row per run.

One connection per store, shared by threads under a lock; WAL mode with
``synchronous=NORMAL`` (a crash of the process loses nothing; a power cut may lose the
last traces), so a save costs well under a millisecond instead of an fsync, and a CLI can
read while the service writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recpilot.stores.traces.recorder import RunTrace
from recpilot.stores.traces.rows import (
    COLUMNS,
    TraceNotFound,
    TraceSummary,
    find_body,
    list_query,
    summary_of,
    trace_row,
)

__all__ = ["TRACES_FILE", "TraceNotFound", "TraceStore", "TraceSummary"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    thread_id TEXT,
    user_id TEXT,
    message TEXT,
    total_ms REAL NOT NULL,
    stages TEXT NOT NULL,
    llm_calls INTEGER NOT NULL,
    fell_back INTEGER NOT NULL,
    error TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_started ON traces (started_at);
"""


TRACES_FILE = "traces.sqlite"  # in the data directory


class TraceStore:
    """The trace table in ``path`` (created on first use).

    Args:
        path: the SQLite file, normally ``home/traces.sqlite``.
        keep: how many of the newest runs to keep; older ones are pruned every
            ``PRUNE_EVERY`` saves (a trace is ~30 KB without LLM calls).
    """

    PRUNE_EVERY = 100

    def __init__(self, path: Path, keep: int = 5000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self._saves = 0
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._conn.commit()

    @classmethod
    def in_home(cls, home: Path, keep: int = 5000) -> TraceStore:
        """The store of a data directory: ``home/traces.sqlite``."""
        return cls(Path(home) / TRACES_FILE, keep)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._conn:
            yield self._conn

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def save(self, trace: RunTrace) -> None:
        """Insert (or replace) ``trace``."""
        row = trace_row(trace)
        with self._db() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO traces ({', '.join(COLUMNS)}) "
                f"VALUES ({','.join('?' * len(COLUMNS))})",
                row,
            )
            self._saves += 1
            if self._saves % self.PRUNE_EVERY == 0:
                self._prune(conn)

    def _prune(self, conn: sqlite3.Connection) -> int:
        """Delete all but the newest ``keep`` runs; returns how many were deleted."""
        return conn.execute(
            "DELETE FROM traces WHERE rowid NOT IN "
            "(SELECT rowid FROM traces ORDER BY rowid DESC LIMIT ?)",
            (self.keep,),
        ).rowcount

    def vacuum(self) -> None:
        """Rewrite the file so deleted rows do not linger in free pages."""
        with self._lock:
            self._conn.execute("VACUUM")

    def delete_user(self, user_id: str) -> int:
        """Delete every run of ``user_id``; returns how many were deleted."""
        with self._db() as conn:
            return conn.execute("DELETE FROM traces WHERE user_id = ?", (user_id,)).rowcount

    def prune(self) -> int:
        """Delete all but the newest ``keep`` runs now; returns how many were deleted."""
        with self._db() as conn:
            return self._prune(conn)

    def list(
        self,
        limit: int = 20,
        user_id: str | None = None,
        thread_id: str | None = None,
    ) -> list[TraceSummary]:
        """The newest ``limit`` runs (newest first), optionally of one user or thread."""
        sql, args = list_query("traces", "?", limit, user_id, thread_id, tiebreak="rowid")
        with self._db() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [summary_of(r) for r in rows]

    def get(self, run_id: str) -> RunTrace:
        """The trace of ``run_id`` (a unique prefix of at least 6 characters also works).

        Raises:
            TraceNotFound: no such run, or the prefix is ambiguous.
        """
        with self._db() as conn:
            body = find_body(
                run_id, "traces", "?", lambda sql, args: [r[0] for r in conn.execute(sql, args)]
            )
        return RunTrace.model_validate_json(body)

    def ping(self) -> None:
        """Raise ``sqlite3.Error`` if the store cannot be read."""
        with self._db() as conn:
            conn.execute("SELECT count(*) FROM traces").fetchone()
