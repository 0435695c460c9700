"""Feedback rows in PostgreSQL (``RECPILOT_DATABASE_URL``): the ``recpilot_feedback`` table.

The same contract as :class:`recpilot.stores.feedback.FeedbackStore` (add, of_user,
delete_user, ping), shared by every worker process.
"""

from __future__ import annotations

from datetime import UTC, datetime

from recpilot.stores.feedback import FeedbackIn, FeedbackOut
from recpilot.stores.postgres import shared_pool

SCHEMA = """
CREATE TABLE IF NOT EXISTS recpilot_feedback (
    id BIGSERIAL PRIMARY KEY,
    created_at TEXT NOT NULL,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rating DOUBLE PRECISION,
    run_id TEXT,
    thread_id TEXT
);
CREATE INDEX IF NOT EXISTS recpilot_feedback_user ON recpilot_feedback (user_id);
"""
COLUMNS = "id, created_at, user_id, item_id, kind, rating, run_id, thread_id"


class PostgresFeedbackStore:
    """Append-only feedback rows in PostgreSQL.

    Args:
        url: ``postgresql://…``.

    Raises:
        recpilot.stores.postgres.PostgresUnavailableError: driver missing, server down.
    """

    def __init__(self, url: str) -> None:
        self.pool = shared_pool(url)
        with self.pool.connection() as conn:
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)  # one by one: no multi-statement prepared queries

    def add(self, fb: FeedbackIn) -> FeedbackOut:
        """Store one feedback row; returns it with its id and UTC timestamp."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO recpilot_feedback (created_at, user_id, item_id, kind, rating, "
                "run_id, thread_id) VALUES (%s,%s,%s,%s,%s,%s,%s) RETURNING " + COLUMNS,
                (now, fb.user_id, fb.item_id, fb.kind, fb.rating, fb.run_id, fb.thread_id),
            ).fetchone()
        return FeedbackOut(**row)

    def of_user(self, user_id: str, limit: int = 50) -> list[FeedbackOut]:
        """The user's feedback, newest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM recpilot_feedback WHERE user_id = %s "
                "ORDER BY id DESC LIMIT %s",
                (user_id, limit),
            ).fetchall()
        return [FeedbackOut(**r) for r in rows]

    def delete_user(self, user_id: str) -> int:
        """Delete the user's feedback; returns the number of rows removed."""
        with self.pool.connection() as conn:
            return conn.execute(
                "DELETE FROM recpilot_feedback WHERE user_id = %s", (user_id,)
            ).rowcount

    def ping(self) -> None:
        """Raise ``psycopg.Error`` if the table cannot be read."""
        with self.pool.connection() as conn:
            conn.execute("SELECT count(*) FROM recpilot_feedback").fetchone()
