"""Traces in PostgreSQL (``RECPILOT_DATABASE_URL``): the ``recpilot_traces`` table.

The same contract as :class:`recpilot.stores.traces.store.TraceStore` (save, list, get,
delete_user, prune, vacuum, ping, close), shared by every worker process. The body is
the trace's JSON, as in the SQLite store.
"""

from __future__ import annotations

import re

from recpilot.stores.postgres import shared_pool
from recpilot.stores.traces.recorder import RunTrace
from recpilot.stores.traces.store import TraceNotFound, TraceSummary

SCHEMA = """
CREATE TABLE IF NOT EXISTS recpilot_traces (
    seq BIGSERIAL,
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    thread_id TEXT,
    user_id TEXT,
    message TEXT,
    total_ms DOUBLE PRECISION NOT NULL,
    stages TEXT NOT NULL,
    llm_calls INTEGER NOT NULL,
    fell_back BOOLEAN NOT NULL,
    error TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recpilot_traces_started ON recpilot_traces (started_at);
CREATE INDEX IF NOT EXISTS recpilot_traces_user ON recpilot_traces (user_id);
"""
SUMMARY = "run_id, started_at, thread_id, user_id, message, total_ms, stages, llm_calls, " \
    "fell_back, error"


class PostgresTraceStore:
    """Run traces in PostgreSQL.

    Args:
        url: ``postgresql://…``.
        keep: newest runs kept; older ones pruned every ``PRUNE_EVERY`` saves (per process).

    Raises:
        recpilot.stores.postgres.PostgresUnavailableError: driver missing, server down.
    """

    PRUNE_EVERY = 100

    def __init__(self, url: str, keep: int = 5000) -> None:
        self.url = url
        self.keep = keep
        self._saves = 0
        self.pool = shared_pool(url)
        with self.pool.connection() as conn:
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)  # one by one: no multi-statement prepared queries

    def close(self) -> None:
        """Nothing to close: the pool is the process's (``stores.postgres.close_pools``)."""

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
            bool(trace.fallbacks) or any(n.fell_back for n in trace.nodes),
            trace.error,
            trace.model_dump_json(),
        )
        with self.pool.connection() as conn:
            conn.execute(
                f"INSERT INTO recpilot_traces ({SUMMARY}, body) VALUES "
                "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (run_id) DO UPDATE SET "
                "body = EXCLUDED.body, total_ms = EXCLUDED.total_ms, error = EXCLUDED.error",
                row,
            )
        self._saves += 1
        if self._saves % self.PRUNE_EVERY == 0:
            self.prune()

    def prune(self) -> int:
        """Delete all but the newest ``keep`` runs now; returns how many were deleted."""
        with self.pool.connection() as conn:
            return conn.execute(
                "DELETE FROM recpilot_traces WHERE seq < (SELECT min(seq) FROM "
                "(SELECT seq FROM recpilot_traces ORDER BY seq DESC LIMIT %s) AS newest)",
                (self.keep,),
            ).rowcount

    def vacuum(self) -> None:
        """PostgreSQL's autovacuum reclaims deleted rows; nothing to do here."""

    def delete_user(self, user_id: str) -> int:
        """Delete every run of ``user_id``; returns how many were deleted."""
        with self.pool.connection() as conn:
            return conn.execute(
                "DELETE FROM recpilot_traces WHERE user_id = %s", (user_id,)
            ).rowcount

    def list(
        self, limit: int = 20, user_id: str | None = None, thread_id: str | None = None
    ) -> list[TraceSummary]:
        """The newest ``limit`` runs (newest first), optionally of one user or thread."""
        where, args = [], []
        if user_id is not None:
            where.append("user_id = %s")
            args.append(user_id)
        if thread_id is not None:
            where.append("thread_id = %s")
            args.append(thread_id)
        sql = (
            f"SELECT {SUMMARY} FROM recpilot_traces"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY started_at DESC, seq DESC LIMIT %s"
        )
        with self.pool.connection() as conn:
            rows = conn.execute(sql, [*args, int(limit)]).fetchall()
        return [
            TraceSummary(**{**r, "stages": [s for s in r["stages"].split(",") if s]})
            for r in rows
        ]

    def get(self, run_id: str) -> RunTrace:
        """The trace of ``run_id`` (a unique prefix of at least 6 characters also works).

        Raises:
            TraceNotFound: no such run, or the prefix is ambiguous.
        """
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT body FROM recpilot_traces WHERE run_id = %s", (run_id,)
            ).fetchone()
            if row is None and len(run_id) >= 6 and re.fullmatch(r"[A-Za-z0-9-]+", run_id):
                rows = conn.execute(
                    "SELECT body FROM recpilot_traces WHERE run_id LIKE %s LIMIT 2",
                    (run_id + "%",),
                ).fetchall()
                if len(rows) > 1:
                    raise TraceNotFound(f"run id prefix {run_id!r} matches several runs")
                row = rows[0] if rows else None
        if row is None:
            raise TraceNotFound(f"no trace with run id {run_id!r}")
        return RunTrace.model_validate_json(row["body"])

    def ping(self) -> None:
        """Raise ``psycopg.Error`` if the table cannot be read."""
        with self.pool.connection() as conn:
            conn.execute("SELECT count(*) FROM recpilot_traces").fetchone()
