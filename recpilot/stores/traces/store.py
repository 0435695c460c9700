"""Traces on disk: one SQLite file, ``home/traces.sqlite``, one row per run.

One connection per store, shared by threads under a lock; WAL mode with
``synchronous=NORMAL`` (a crash of the process loses nothing; a power cut may lose the
last traces), so a save costs well under a millisecond instead of an fsync, and a CLI can
read while the service writes.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from recpilot.stores.traces.recorder import RunTrace

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


class TraceSummary(BaseModel):
    """One line of ``trace list``: when, who, what, how long, what went wrong."""

    run_id: str
    started_at: str
    thread_id: str | None
    user_id: str | None
    message: str | None
    total_ms: float
    stages: list[str]
    llm_calls: int
    fell_back: bool
    error: str | None


class TraceNotFound(KeyError):
    """No trace has that run id (or the prefix matches none or several)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "trace not found"


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
        row = (
            trace.run_id,
            trace.started_at,
            trace.thread_id,
            trace.user_id,
            trace.message,
            trace.total_ms,
            ",".join(n.node for n in trace.nodes),
            trace.llm_calls,
            int(bool(trace.fallbacks) or any(n.fell_back for n in trace.nodes)),
            trace.error,
            trace.model_dump_json(),
        )
        with self._db() as conn:
            conn.execute("INSERT OR REPLACE INTO traces VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
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
        where, args = [], []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
        if thread_id is not None:
            where.append("thread_id = ?")
            args.append(thread_id)
        sql = (
            "SELECT run_id, started_at, thread_id, user_id, message, total_ms, stages, "
            "llm_calls, fell_back, error FROM traces"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        )
        with self._db() as conn:
            rows = conn.execute(sql, [*args, int(limit)]).fetchall()
        return [
            TraceSummary(
                run_id=r[0],
                started_at=r[1],
                thread_id=r[2],
                user_id=r[3],
                message=r[4],
                total_ms=r[5],
                stages=[s for s in r[6].split(",") if s],
                llm_calls=r[7],
                fell_back=bool(r[8]),
                error=r[9],
            )  # fmt: skip
            for r in rows
        ]

    def get(self, run_id: str) -> RunTrace:
        """The trace of ``run_id`` (a unique prefix of at least 6 characters also works).

        Raises:
            TraceNotFound: no such run, or the prefix is ambiguous.
        """
        with self._db() as conn:
            row = conn.execute("SELECT body FROM traces WHERE run_id = ?", (run_id,)).fetchone()
            if row is None and len(run_id) >= 6 and re.fullmatch(r"[A-Za-z0-9-]+", run_id):
                like = run_id + "%"  # plain id characters only: no LIKE wildcards
                rows = conn.execute(
                    "SELECT body FROM traces WHERE run_id LIKE ? LIMIT 2", (like,)
                ).fetchall()
                if len(rows) > 1:
                    raise TraceNotFound(f"run id prefix {run_id!r} matches several runs")
                row = rows[0] if rows else None
        if row is None:
            raise TraceNotFound(f"no trace with run id {run_id!r}")
        return RunTrace.model_validate_json(row[0])

    def ping(self) -> None:
        """Raise ``sqlite3.Error`` if the store cannot be read."""
        with self._db() as conn:
            conn.execute("SELECT count(*) FROM traces").fetchone()
