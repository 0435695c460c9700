"""What the SQLite and PostgreSQL trace stores share: the row of a trace, the summary
columns and their parsing, the ``list`` query and the run-id (prefix) lookup. Each store
keeps only its connection handling and its placeholder (``?`` or ``%s``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from recpilot.stores.traces.recorder import RunTrace

SUMMARY_COLUMNS = (
    "run_id", "started_at", "thread_id", "user_id", "message", "total_ms", "stages",
    "llm_calls", "fell_back", "error",
)  # fmt: skip
SUMMARY = ", ".join(SUMMARY_COLUMNS)
COLUMNS = (*SUMMARY_COLUMNS, "body")  # a stored row, in this order
PREFIX_MIN = 6  # shortest run-id prefix `get` resolves


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


def trace_row(trace: RunTrace) -> tuple[Any, ...]:
    """The stored row of ``trace``, values in :data:`COLUMNS` order (``stages``: node
    names joined by ``,``; ``fell_back``: any fallback or fallen-back node; ``body``:
    the trace's JSON)."""
    return (
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


def summary_of(values: Sequence[Any]) -> TraceSummary:
    """A :class:`TraceSummary` from a row's values in :data:`SUMMARY_COLUMNS` order."""
    fields = dict(zip(SUMMARY_COLUMNS, values, strict=True))
    fields["stages"] = [s for s in fields["stages"].split(",") if s]
    fields["fell_back"] = bool(fields["fell_back"])
    return TraceSummary(**fields)


def list_query(
    table: str,
    placeholder: str,
    limit: int,
    user_id: str | None = None,
    thread_id: str | None = None,
    tiebreak: str = "rowid",
) -> tuple[str, list[Any]]:
    """The SQL and arguments of ``list``: the newest ``limit`` runs (by ``started_at``,
    then ``tiebreak`` — an insertion-ordered column), optionally of one user or thread.

    Args:
        table: the traces table.
        placeholder: the driver's parameter marker (``?`` for sqlite3, ``%s`` for psycopg).
        limit: rows at most.
        user_id, thread_id: filters (None: any).
        tiebreak: the insertion-order column (``rowid`` in SQLite, ``seq`` in PostgreSQL).

    Returns:
        ``(sql, args)`` selecting :data:`SUMMARY_COLUMNS`.
    """
    filters = {"user_id": user_id, "thread_id": thread_id}
    where = [f"{col} = {placeholder}" for col, v in filters.items() if v is not None]
    args: list[Any] = [v for v in filters.values() if v is not None]
    sql = (
        f"SELECT {SUMMARY} FROM {table}"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY started_at DESC, {tiebreak} DESC LIMIT {placeholder}"
    )
    return sql, [*args, int(limit)]


def find_body(
    run_id: str, table: str, placeholder: str, bodies: Callable[[str, tuple[Any, ...]], list[str]]
) -> str:
    """The stored JSON body of ``run_id``, or of the one run whose id starts with it (a
    prefix of at least :data:`PREFIX_MIN` plain id characters: no LIKE wildcards).

    Args:
        run_id: a run id or a unique prefix of one.
        table, placeholder: as in :func:`list_query`.
        bodies: runs ``(sql, args)`` on the store's connection and returns the selected
            ``body`` values.

    Raises:
        TraceNotFound: no such run, or the prefix matches several.
    """
    rows = bodies(f"SELECT body FROM {table} WHERE run_id = {placeholder}", (run_id,))
    if not rows and len(run_id) >= PREFIX_MIN and re.fullmatch(r"[A-Za-z0-9-]+", run_id):
        rows = bodies(
            f"SELECT body FROM {table} WHERE run_id LIKE {placeholder} LIMIT 2", (run_id + "%",)
        )
        if len(rows) > 1:
            raise TraceNotFound(f"run id prefix {run_id!r} matches several runs")
    if not rows:
        raise TraceNotFound(f"no trace with run id {run_id!r}")
    return rows[0]
