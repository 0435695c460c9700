"""Conversation checkpoints: one LangGraph ``SqliteSaver`` file in the data directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

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


def open_checkpointer(home: Path) -> SqliteSaver:
    """A ``SqliteSaver`` on ``home/checkpoints.sqlite`` (created if missing).

    The connection allows use from other threads (the HTTP service runs graph calls
    in a worker pool); close it with ``saver.conn.close()``.
    """
    home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(home / "checkpoints.sqlite", check_same_thread=False)
    saver = SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES))
    saver.setup()
    return saver


def threads_of_user(saver: SqliteSaver, user_id: str) -> list[str]:
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


def forget_threads(saver: SqliteSaver, user_id: str) -> list[str]:
    """Delete every checkpoint thread of ``user_id`` (checkpoints and pending writes).

    Returns:
        The deleted thread ids.
    """
    threads = threads_of_user(saver, user_id)
    for thread in threads:
        saver.delete_thread(thread)
    return threads
