"""Conversation checkpoints: LangGraph ``SqliteSaver`` in the data directory (one process),
or ``PostgresSaver`` on ``RECPILOT_DATABASE_URL`` (shared by worker processes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from recpilot.stores.postgres import is_postgres_url, shared_pool

# State types stored in checkpoints; LangGraph only deserialises types it is told about.
STATE_TYPES = [
    ("recpilot.data.catalogue", "Constraints"),
    ("recpilot.agent.state", "Intent"),
    ("recpilot.agent.state", "Plan"),
    ("recpilot.agent.state", "RecommendedItem"),
    ("recpilot.agent.state", "PreviousTurn"),
    ("recpilot.agent.state", "ShownDetail"),
    ("recpilot.stores.profiles", "UserProfile"),
]


def open_checkpointer(home: Path, database_url: str | None = None) -> Any:
    """The conversation checkpointer: ``SqliteSaver`` or ``PostgresSaver``.

    Args:
        home: data directory; ``home/checkpoints.sqlite`` is used without a database URL
            (created if missing; the connection allows use from other threads, guarded by
            the saver's own lock).
        database_url: ``postgresql://…``: a ``PostgresSaver`` over the process's shared,
            checked connection pool (:mod:`recpilot.stores.postgres`), tables set up.

    Returns:
        The saver; close it with :func:`close_checkpointer`.

    Raises:
        recpilot.stores.postgres.PostgresUnavailableError: PostgreSQL configured but the
            driver is missing or the server is down.
    """
    serde = JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)
    if is_postgres_url(database_url):
        from langgraph.checkpoint.postgres import PostgresSaver

        saver = PostgresSaver(shared_pool(str(database_url)), serde=serde)
        saver.setup()
        return saver
    home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(home / "checkpoints.sqlite", check_same_thread=False)
    saver = SqliteSaver(conn, serde=serde)
    saver.setup()
    return saver


def close_checkpointer(saver: Any) -> None:
    """Close a saver from :func:`open_checkpointer` (a shared pool stays open)."""
    if isinstance(saver, SqliteSaver):
        saver.conn.close()


def ping_checkpointer(saver: Any) -> None:
    """Raise if the checkpointer's database cannot be queried."""
    if isinstance(saver, SqliteSaver):
        saver.conn.execute("SELECT 1").fetchone()
        return
    with saver.conn.connection() as conn:  # PostgresSaver over a pool
        conn.execute("SELECT 1").fetchone()


def threads_of_user(saver: Any, user_id: str) -> list[str]:
    """Thread ids with any checkpoint of ``user_id``.

    A checkpoint belongs to the user when its metadata says so (the runner stores
    ``user_id`` in every thread's run metadata) or its state's ``user_id`` is theirs.
    """
    found: list[str] = []
    for tup in saver.list(None):
        thread = str(tup.config["configurable"]["thread_id"])
        if thread in found:
            continue
        owner = tup.metadata.get("user_id") if tup.metadata else None
        state_user = tup.checkpoint.get("channel_values", {}).get("user_id")
        if user_id in (owner, state_user):
            found.append(thread)
    return found


def forget_threads(saver: Any, user_id: str) -> list[str]:
    """Delete every checkpoint thread of ``user_id`` (checkpoints and pending writes).

    Returns:
        The deleted thread ids.
    """
    threads = threads_of_user(saver, user_id)
    for thread in threads:
        saver.delete_thread(thread)
    return threads
