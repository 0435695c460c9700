"""Named locks for read-modify-write of shared state: one chat thread, one user's profile.

Two turns of one chat thread must not interleave (each reads the thread's checkpoint and
writes the next), and two writes of one user's profile (a chat turn's ``remember`` and a
``POST /v1/feedback``) must not overwrite each other. :class:`KeyedLocks` serialises
holders of the same key inside one process; :class:`PostgresKeyedLocks` also serialises
them across processes (``recpilot serve --workers N``) with a PostgreSQL session
advisory lock (``pg_advisory_lock(hashtextextended(key, 0))``, PostgreSQL docs §9.27.10)
held on a pooled connection for the duration of the block (one pool per lock namespace,
so a user lock taken inside a thread lock never waits on the thread locks' connections).

:func:`locks_for` gives the process's one instance for a database URL (or the local one).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from recpilot.config.db_urls import is_postgres_url

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

    A session advisory lock is held on a connection for the whole block, so each held
    key takes one connection. Keys are grouped into namespaces (the key up to its last
    ``:``: ``recpilot:thread``, ``recpilot:user``) and **each namespace has its own
    pool** of at most ``max_connections``: a chat turn holds its thread's lock while
    ``remember`` takes the user's, and that inner lock must never wait for a connection
    held by the outer locks (with one shared pool, ``max_connections`` concurrent turns
    would hold every connection and each inner lock would wait until the pool timeout).
    Per process this is at most ``max_connections`` connections per namespace (two
    namespaces today), on top of :func:`recpilot.stores.postgres.shared_pool`'s.

    Args:
        url: ``postgresql://…`` of the shared database.
        max_connections: connections per namespace's pool (one per key held at once in
            this process).
        timeout_s: seconds to wait for a pooled connection before ``PoolTimeout``.

    Raises:
        psycopg.OperationalError: the server cannot be reached when a lock is taken.
        psycopg_pool.PoolTimeout: no connection within ``timeout_s``.
    """

    def __init__(self, url: str, max_connections: int = 16, timeout_s: float = 30.0) -> None:
        super().__init__()
        self._url = url
        self._max = max_connections
        self._timeout_s = timeout_s
        self._pools: dict[str, Any] = {}  # namespace -> ConnectionPool

    def pool_for(self, key: str) -> Any:
        """The ``ConnectionPool`` of ``key``'s namespace (opened on first use)."""
        from psycopg_pool import ConnectionPool

        space = key.rpartition(":")[0]
        with self._guard:
            pool = self._pools.get(space)
            if pool is None:
                pool = ConnectionPool(
                    self._url,
                    min_size=0,
                    max_size=self._max,
                    timeout=self._timeout_s,
                    kwargs={"autocommit": True},
                    check=ConnectionPool.check_connection,  # a restarted server: drop dead ones
                    open=True,
                    name=f"recpilot-locks-{space}",
                )
                self._pools[space] = pool
            return pool

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold ``key`` in this process and in the database for the ``with`` block."""
        with self._local(key), self.pool_for(key).connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a dead connection released it already
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    def close(self) -> None:
        """Close every namespace's pool."""
        with self._guard:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def locks_for(database_url: str | None) -> KeyedLocks:
    """The process's locks for ``database_url`` (PostgreSQL) or local ones (None/SQLite)."""
    key = database_url if is_postgres_url(database_url) else None
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
