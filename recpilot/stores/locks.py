"""Named locks for read-modify-write of shared state: one chat thread, one user's profile.

Two turns of one chat thread must not interleave (each reads the thread's checkpoint and
writes the next), and two writes of one user's profile (a chat turn's ``remember`` and a
``POST /v1/feedback``) must not overwrite each other. :class:`KeyedLocks` serialises
holders of the same key inside one process; :class:`PostgresKeyedLocks` also serialises
them across processes (``recpilot serve --workers N``) with a PostgreSQL session
advisory lock (``pg_advisory_lock(hashtextextended(key, 0))``, PostgreSQL docs §9.27.10)
held on a pooled connection for the duration of the block.

:func:`locks_for` gives the process's one instance for a database URL (or the local one).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_REGISTRY_LOCK = threading.Lock()
_REGISTRY: dict[str | None, KeyedLocks] = {}


class KeyedLocks:
    """Per-key mutexes inside one process (entries are dropped when nobody holds them)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def _local(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold the lock named ``key`` for the ``with`` block (blocks until free)."""
        with self._local(key):
            yield

    def held(self) -> int:
        """Keys currently held or waited for in this process."""
        with self._guard:
            return len(self._locks)

    def close(self) -> None:
        """Release resources (nothing for local locks)."""


class PostgresKeyedLocks(KeyedLocks):
    """Per-key locks across processes: a local lock, then a PostgreSQL advisory lock.

    Args:
        url: ``postgresql://…`` of the shared database.
        max_connections: pooled connections (one per key held at once in this process).

    Raises:
        psycopg.OperationalError: the server cannot be reached when a lock is taken.
    """

    def __init__(self, url: str, max_connections: int = 16) -> None:
        super().__init__()
        from psycopg_pool import ConnectionPool

        self.url = url
        self.pool = ConnectionPool(
            url,
            min_size=0,
            max_size=max_connections,
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,  # a restarted server: drop dead ones
            open=True,
        )

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold ``key`` in this process and in the database for the ``with`` block."""
        with self._local(key), self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a dead connection released it already
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    def close(self) -> None:
        """Close the pool."""
        self.pool.close()


def locks_for(database_url: str | None) -> KeyedLocks:
    """The process's locks for ``database_url`` (PostgreSQL) or local ones (None/SQLite)."""
    key = database_url if database_url and database_url.startswith("postgres") else None
    with _REGISTRY_LOCK:
        if key not in _REGISTRY:
            _REGISTRY[key] = PostgresKeyedLocks(key) if key else KeyedLocks()
        return _REGISTRY[key]


def thread_key(thread_id: str) -> str:
    """The lock name of a chat thread."""
    return f"recpilot:thread:{thread_id}"


def user_key(user_id: str) -> str:
    """The lock name of a user's profile."""
    return f"recpilot:user:{user_id}"
