"""PostgreSQL connections shared by the stores: one pool per database URL per process.

Every PostgreSQL-backed store (checkpoints, profiles, traces, feedback) takes its
connections from a ``psycopg_pool.ConnectionPool`` that checks a connection before lending
it, so after a server restart the dead connections are dropped and new ones opened: the
service recovers without a restart of its own. The driver is the optional extra
``postgres`` (``pip install 'recpilot[postgres]'``).

The keyed locks (:class:`recpilot.stores.locks.PostgresKeyedLocks`) do **not** use this
pool: an advisory lock holds its connection for a whole chat turn, so they have one pool
per lock namespace (thread locks, user locks). Connection budget per worker process and
database: up to ``POOL_MAX`` (16) here + 16 for thread locks + 16 for user locks = 48;
``recpilot serve --workers N`` needs ``max_connections`` ≥ 48·N plus other clients.
"""

from __future__ import annotations

import threading
from typing import Any

from recpilot.config.db_urls import is_postgres_url, redact_url

__all__ = ["POOL_MAX", "PostgresUnavailableError", "close_pools", "is_postgres_url", "shared_pool"]

_POOLS: dict[str, Any] = {}
_GUARD = threading.Lock()
POOL_MAX = 16  # connections per process and database


class PostgresUnavailableError(OSError):
    """The PostgreSQL driver is missing or the server cannot be reached (message has the fix)."""


def shared_pool(url: str, timeout_s: float = 10.0) -> Any:
    """The process's ``ConnectionPool`` for ``url`` (autocommit, dict rows, checked).

    Connections are autocommit with ``prepare_threshold=0`` and ``dict_row`` rows, what
    LangGraph's ``PostgresSaver``/``PostgresStore`` need; the stores here use them too.

    Args:
        url: ``postgresql://USER:PASSWORD@HOST:PORT/DB``.
        timeout_s: seconds to wait for a connection (opening one included).

    Raises:
        PostgresUnavailableError: the extra is not installed, or no connection could be
            made within ``timeout_s``.
    """
    with _GUARD:
        pool = _POOLS.get(url)
        if pool is not None and not pool.closed:
            return pool
        try:
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool
        except ImportError as err:
            raise PostgresUnavailableError(
                "a PostgreSQL URL is configured but the driver is not installed: "
                "pip install 'recpilot[postgres]'"
            ) from err
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            timeout=timeout_s,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            check=ConnectionPool.check_connection,
            open=False,
            name="recpilot",
        )
        try:
            pool.open(wait=True, timeout=timeout_s)
        except Exception as err:  # PoolTimeout, OperationalError
            pool.close()
            raise PostgresUnavailableError(
                f"PostgreSQL at {redact_url(url)} cannot be reached ({err}); start it or fix "
                "RECPILOT_DATABASE_URL"
            ) from err
        _POOLS[url] = pool
        return pool


def close_pools() -> None:
    """Close every pool of this process (tests, shutdown)."""
    with _GUARD:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()
