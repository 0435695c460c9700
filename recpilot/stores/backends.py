"""Which store backs traces and feedback: SQLite in the data directory, or PostgreSQL.

``RECPILOT_DATABASE_URL`` unset → ``home/traces.sqlite`` and ``home/feedback.sqlite`` (one
process); ``postgresql://…`` → the ``recpilot_traces`` and ``recpilot_feedback`` tables,
shared by every worker process. (Checkpoints: ``stores.checkpoints.open_checkpointer``;
profiles: ``stores.profiles.open_store``.)
"""

from __future__ import annotations

from typing import Protocol

from recpilot.config.settings import Settings
from recpilot.stores.feedback import FEEDBACK_FILE, FeedbackIn, FeedbackOut, FeedbackStore
from recpilot.stores.postgres import is_postgres_url
from recpilot.stores.traces.recorder import RunTrace
from recpilot.stores.traces.store import TraceStore, TraceSummary


class Traces(Protocol):
    """The trace store contract (SQLite :class:`TraceStore` or ``PostgresTraceStore``)."""

    def save(self, trace: RunTrace) -> None: ...  # noqa: D102
    def list(  # noqa: D102
        self, limit: int = 20, user_id: str | None = None, thread_id: str | None = None
    ) -> list[TraceSummary]: ...
    def get(self, run_id: str) -> RunTrace: ...  # noqa: D102
    def delete_user(self, user_id: str) -> int: ...  # noqa: D102
    def vacuum(self) -> None: ...  # noqa: D102
    def ping(self) -> None: ...  # noqa: D102
    def close(self) -> None: ...  # noqa: D102


class Feedback(Protocol):
    """The feedback store contract (SQLite :class:`FeedbackStore` or the PostgreSQL one)."""

    def add(self, fb: FeedbackIn) -> FeedbackOut: ...  # noqa: D102
    def of_user(self, user_id: str, limit: int = 50) -> list[FeedbackOut]: ...  # noqa: D102
    def delete_user(self, user_id: str) -> int: ...  # noqa: D102
    def ping(self) -> None: ...  # noqa: D102


def trace_store_for(settings: Settings) -> Traces:
    """The trace store the settings select (``database_url``, else ``home/traces.sqlite``).

    Raises:
        recpilot.stores.postgres.PostgresUnavailableError: PostgreSQL configured but down.
    """
    if is_postgres_url(settings.database_url):
        from recpilot.stores.traces.pg import PostgresTraceStore

        return PostgresTraceStore(str(settings.database_url), settings.traces_keep)
    return TraceStore.in_home(settings.home, settings.traces_keep)


def feedback_store_for(settings: Settings) -> Feedback:
    """The feedback store the settings select (``database_url``, else ``home/feedback.sqlite``).

    Raises:
        recpilot.stores.postgres.PostgresUnavailableError: PostgreSQL configured but down.
    """
    if is_postgres_url(settings.database_url):
        from recpilot.stores.feedback_pg import PostgresFeedbackStore

        return PostgresFeedbackStore(str(settings.database_url))
    return FeedbackStore(settings.home / FEEDBACK_FILE)
