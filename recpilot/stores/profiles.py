"""Long-term user profiles in a LangGraph store (``SqliteStore`` by default, ``PostgresStore``).

One profile per user id, stored as one item under the namespace ``("users", <user_id>)``
with key ``"profile"``:

- ``liked`` / ``disliked``: catalogue item ids (from chat turns and explicit feedback);
- ``avoid_categories``: hard constraints the user stated ("no horror") — they apply to
  every later request of that user until lifted ("horror is fine again");
- ``preferences``: what the user asked for, in their words (the last few requests);
- ``attributes``: facts the user gave about themselves (``audience``: who they watch
  with, ``age_band``);
- ``summary``: an interest summary written by the LLM from the user's history ("user
  understanding", see ``recpilot profile summarize``).

The store is chosen by :func:`store_backend`: ``RECPILOT_STORE_URL`` unset or a SQLite
path → ``home/profiles.sqlite`` (or that file); ``postgresql://…`` → ``PostgresStore``
(``pip install 'recpilot[postgres]'``).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field

from recpilot.config.db_urls import is_postgres_url
from recpilot.config.settings import Settings
from recpilot.stores.locks import KeyedLocks, locks_for, user_key
from recpilot.stores.postgres import shared_pool

# The locks that serialise profile writes of each open store (see update_profile).
_STORE_LOCKS: weakref.WeakKeyDictionary[BaseStore, KeyedLocks] = weakref.WeakKeyDictionary()

PROFILE_KEY = "profile"
MAX_PREFERENCES = 10


class StoreUnavailableError(OSError):
    """The configured profile store cannot be opened (e.g. its driver is missing)."""


USER_ID_PATTERN = r"[A-Za-z0-9._:@-]{1,64}"  # the same rule as the HTTP service's schemas


def check_user_id(user_id: str) -> str:
    """``user_id`` if it is a valid id: 1–64 of letters, digits and ``. _ : @ -``.

    One rule everywhere (CLI, runner, service), so every stored id can be shown and
    forgotten again; wildcards such as ``*`` never reach the store.

    Raises:
        ValueError: an empty or otherwise invalid id (the message gives the rule).
    """
    if not re.fullmatch(USER_ID_PATTERN, user_id or ""):
        raise ValueError(
            f"invalid user id {user_id!r}: use 1-64 letters, digits, '.', '_', ':', '@' or '-'"
        )
    return user_id


def namespace(user_id: str) -> tuple[str, ...]:
    """The store namespace of one user's memory: ``("users", label)``.

    LangGraph store labels cannot contain ``.``, so the id is percent-encoded there
    (``%`` → ``%25``, ``.`` → ``%2E``): distinct ids keep distinct labels.
    """
    return ("users", user_id.replace("%", "%25").replace(".", "%2E"))


class UserProfile(BaseModel):
    """What recpilot remembers about one user (see the module docstring)."""

    user_id: str
    liked: list[str] = Field(default_factory=list)
    disliked: list[str] = Field(default_factory=list)
    seen: list[str] = Field(default_factory=list)  # said "already seen": never recommended
    avoid_categories: list[str] = Field(default_factory=list)
    preferences: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    updated_at: str = ""

    def is_empty(self) -> bool:
        """True when nothing is remembered about the user."""
        return not (
            self.liked or self.disliked or self.seen or self.avoid_categories or self.preferences
            or self.attributes or self.summary
        )  # fmt: skip

    def like(self, item_id: str) -> None:
        """Record a like (removes an earlier dislike of the same item)."""
        self.disliked = [i for i in self.disliked if i != item_id]
        if item_id not in self.liked:
            self.liked.append(item_id)

    def dislike(self, item_id: str) -> None:
        """Record a dislike (removes an earlier like of the same item)."""
        self.liked = [i for i in self.liked if i != item_id]
        if item_id not in self.disliked:
            self.disliked.append(item_id)

    def mark_seen(self, item_id: str) -> None:
        """Record that the user has seen the item (it is never recommended again)."""
        if item_id not in self.seen:
            self.seen.append(item_id)

    def avoid(self, categories: list[str]) -> None:
        """Add hard category exclusions (catalogue spelling)."""
        self.avoid_categories = list(dict.fromkeys([*self.avoid_categories, *categories]))

    def lift(self, categories: list[str]) -> None:
        """Remove category exclusions the user lifted."""
        self.avoid_categories = [c for c in self.avoid_categories if c not in categories]

    def prefer(self, text: str) -> None:
        """Remember a stated preference (the last ``MAX_PREFERENCES`` are kept)."""
        text = text.strip()
        if text and text not in self.preferences:
            self.preferences = [*self.preferences, text][-MAX_PREFERENCES:]


def store_backend(settings: Settings) -> tuple[Literal["sqlite", "postgres"], str]:
    """Which store the settings select, and where.

    Returns:
        ``("postgres", url)`` for a ``postgres://``/``postgresql://`` ``store_url`` (or,
        with ``store_url`` unset, ``database_url``);
        otherwise ``("sqlite", path)`` — ``store_url`` as a file path, or
        ``home/profiles.sqlite`` when unset.
    """
    url = settings.store_url or settings.database_url
    if is_postgres_url(url):
        return "postgres", url
    if url:
        return "sqlite", str(Path(url.removeprefix("sqlite:///")).expanduser())
    return "sqlite", str(settings.home / "profiles.sqlite")


@contextlib.contextmanager
def open_store(settings: Settings) -> Iterator[BaseStore]:
    """Open (and set up) the profile store the settings select; closed on exit.

    Raises:
        StoreUnavailableError: a PostgreSQL URL is set but ``langgraph-checkpoint-postgres`` is
            not installed (the message names the extra to install), or the store cannot be
            opened (unreachable server, a file that is not a SQLite database).
    """
    kind, where = store_backend(settings)
    if kind == "postgres":
        try:
            from langgraph.store.postgres import PostgresStore
        except ImportError as err:
            raise StoreUnavailableError(
                "RECPILOT_STORE_URL is a PostgreSQL URL but the PostgreSQL store is not "
                "installed: pip install 'recpilot[postgres]'"
            ) from err
        try:  # over the process's checked pool: a restarted server is reconnected
            pg_store = PostgresStore(shared_pool(where))
            pg_store.setup()
        except Exception as err:  # psycopg's errors: connection refused, auth, …
            raise StoreUnavailableError(f"profile store: {err}") from err
        _STORE_LOCKS[pg_store] = locks_for(where)
        yield pg_store
        return
    from langgraph.store.sqlite import SqliteStore

    Path(where).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(where, check_same_thread=False, isolation_level=None)
    try:
        try:
            store = SqliteStore(conn)
            store.setup()
        except sqlite3.Error as err:
            raise StoreUnavailableError(f"profile store {where}: {err}") from err
        _STORE_LOCKS[store] = locks_for(None)
        yield store
    finally:
        conn.close()


def load_profile(store: BaseStore, user_id: str) -> UserProfile:
    """The user's profile, or an empty one if nothing is stored."""
    item = store.get(namespace(user_id), PROFILE_KEY)
    if item is None:
        return UserProfile(user_id=user_id)
    return UserProfile.model_validate({**item.value, "user_id": user_id})


def save_profile(store: BaseStore, profile: UserProfile) -> UserProfile:
    """Write ``profile`` (stamped with the current UTC time); returns it."""
    profile.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
    store.put(namespace(profile.user_id), PROFILE_KEY, profile.model_dump(mode="json"))
    return profile


def update_profile(
    store: BaseStore, user_id: str, change: Callable[[UserProfile], bool]
) -> tuple[UserProfile, bool]:
    """Read, change and write the user's profile with no other writer in between.

    Holds the user's lock (:mod:`recpilot.stores.locks`: per process, and across worker
    processes for a PostgreSQL store) from the read to the write, so a chat turn's
    ``remember`` and a feedback request never overwrite each other's change.

    Args:
        store: the profile store (opened by :func:`open_store`, or any store: then only
            a process-local lock is used).
        user_id: whose profile.
        change: edits the profile in place; returns True when it changed something.

    Returns:
        ``(profile, changed)``: the profile as stored (or as read, when unchanged).
    """
    locks = _STORE_LOCKS.get(store) or locks_for(None)
    with locks.hold(user_key(user_id)):
        profile = load_profile(store, user_id)
        changed = bool(change(profile))
        if changed:
            save_profile(store, profile)
        return profile, changed


def forget_profile(store: BaseStore, user_id: str) -> int:
    """Delete every store item under the user's namespace (and its sub-namespaces).

    Returns:
        The number of items deleted.
    """
    deleted = 0
    for ns in store.list_namespaces(prefix=namespace(user_id), limit=1000):
        while items := store.search(ns, limit=100):
            for item in items:
                store.delete(item.namespace, item.key)
                deleted += 1
    return deleted
