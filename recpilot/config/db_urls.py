"""Database URL helpers shared by the settings and the stores: which URLs are PostgreSQL,
and how to show one without its password."""

from __future__ import annotations


def is_postgres_url(url: str | None) -> bool:
    """True for a ``postgres://`` or ``postgresql://`` URL (False for None/empty)."""
    return bool(url) and str(url).split("://", 1)[0] in ("postgres", "postgresql")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs).

    ``postgresql://app:secret@db:5432/x`` → ``postgresql://app:***@db:5432/x``; a URL
    without a password is returned as given.
    """
    head, sep, tail = url.rpartition("@")
    if not sep or ":" not in head.split("://", 1)[-1]:
        return url
    scheme, _, cred = head.partition("://")
    return f"{scheme}://{cred.split(':', 1)[0]}:***@{tail}"
