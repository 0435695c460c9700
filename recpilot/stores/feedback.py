"""Feedback given through the service: one SQLite table in ``home/feedback.sqlite``."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

FEEDBACK_FILE = "feedback.sqlite"  # in the data directory

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rating REAL,
    run_id TEXT,
    thread_id TEXT
);
CREATE INDEX IF NOT EXISTS feedback_user ON feedback (user_id);
"""


class FeedbackIn(Protocol):
    """What :meth:`FeedbackStore.add` reads from a feedback request (e.g. the service's)."""

    user_id: str
    item_id: str
    kind: str
    rating: float | None
    run_id: str | None
    thread_id: str | None


class FeedbackOut(BaseModel):
    """A stored feedback row."""

    id: int
    created_at: str
    user_id: str
    item_id: str
    kind: str
    rating: float | None = None
    run_id: str | None = None
    thread_id: str | None = None


class FeedbackStore:
    """Append-only feedback rows (deleted only with the user's profile).

    Args:
        path: the SQLite file, normally ``home/feedback.sqlite``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn, conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(self, fb: FeedbackIn) -> FeedbackOut:
        """Store one feedback row; returns it with its id and UTC timestamp."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with closing(self._connect()) as conn, conn:
            cur = conn.execute(
                "INSERT INTO feedback (created_at, user_id, item_id, kind, rating, run_id, "
                "thread_id) VALUES (?,?,?,?,?,?,?)",
                (now, fb.user_id, fb.item_id, fb.kind, fb.rating, fb.run_id, fb.thread_id),
            )
            row_id = int(cur.lastrowid or 0)
        return FeedbackOut(
            id=row_id,
            created_at=now,
            user_id=fb.user_id,
            item_id=fb.item_id,
            kind=fb.kind,
            rating=fb.rating,
            run_id=fb.run_id,
            thread_id=fb.thread_id,
        )

    def of_user(self, user_id: str, limit: int = 50) -> list[FeedbackOut]:
        """The user's feedback, newest first."""
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT id, created_at, user_id, item_id, kind, rating, run_id, thread_id "
                "FROM feedback WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                (user_id, limit),
            ).fetchall()
        keys = ("id", "created_at", "user_id", "item_id", "kind", "rating", "run_id", "thread_id")
        return [FeedbackOut(**dict(zip(keys, r, strict=True))) for r in rows]

    def delete_user(self, user_id: str) -> int:
        """Delete the user's feedback; returns the number of rows removed."""
        with closing(self._connect()) as conn, conn:
            return conn.execute("DELETE FROM feedback WHERE user_id = ?", (user_id,)).rowcount

    def ping(self) -> None:
        """Raise ``sqlite3.Error`` if the store cannot be read."""
        with closing(self._connect()) as conn:
            conn.execute("SELECT count(*) FROM feedback").fetchone()
