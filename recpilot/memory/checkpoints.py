"""Conversation checkpoints: one LangGraph ``SqliteSaver`` file in the data directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver


def open_checkpointer(home: Path) -> SqliteSaver:
    """A ``SqliteSaver`` on ``home/checkpoints.sqlite`` (created if missing).

    The connection allows use from other threads (the HTTP service runs graph calls
    in a worker pool); close it with ``saver.conn.close()``.
    """
    home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(home / "checkpoints.sqlite", check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver
