"""Traces in PostgreSQL (``RECPILOT_DATABASE_URL``): the ``recpilot_traces`` table.

The same contract as :class:`recpilot.stores.traces.store.TraceStore` (save, list, get,
delete_user, prune, vacuum, ping, close), shared by every worker process. The body is
the trace's JSON, as in the SQLite store.
"""

from __future__ import annotations

from recpilot.stores.postgres import shared_pool
from recpilot.stores.traces.recorder import RunTrace
from recpilot.stores.traces.rows import (
    COLUMNS,
    TraceSummary,
    find_body,
    list_query,
    summary_of,
    trace_row,
)

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
UPSERT = (
    f"INSERT INTO recpilot_traces ({', '.join(COLUMNS)}) VALUES "
    f"({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "run_id")
)  # every column replaced, as SQLite's INSERT OR REPLACE does


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
        with self.pool.connection() as conn:
            conn.execute(UPSERT, trace_row(trace))
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
        sql, args = list_query("recpilot_traces", "%s", limit, user_id, thread_id, "seq")
        with self.pool.connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [summary_of(tuple(r.values())) for r in rows]

    def get(self, run_id: str) -> RunTrace:
        """The trace of ``run_id`` (a unique prefix of at least 6 characters also works).

        Raises:
            TraceNotFound: no such run, or the prefix is ambiguous.
        """
        with self.pool.connection() as conn:
            body = find_body(
                run_id,
                "recpilot_traces",
                "%s",
                lambda sql, args: [r["body"] for r in conn.execute(sql, args).fetchall()],
            )
        return RunTrace.model_validate_json(body)

    def ping(self) -> None:
        """Raise ``psycopg.Error`` if the table cannot be read."""
        with self.pool.connection() as conn:
            conn.execute("SELECT count(*) FROM recpilot_traces").fetchone()
