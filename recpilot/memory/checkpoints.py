"""Conversation checkpoints: one LangGraph ``SqliteSaver`` file in the data directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

# State types stored in checkpoints; LangGraph only deserialises types it is told about.
STATE_TYPES = [
    ("recpilot.tools.catalogue", "Constraints"),
    ("recpilot.agent.state", "Intent"),
    ("recpilot.agent.state", "Plan"),
    ("recpilot.agent.state", "RecommendedItem"),
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
