"""Operations on stored user profiles behind ``recpilot feedback`` and ``recpilot profile``.

- :func:`record_feedback`: an explicit like/dislike of a catalogue item;
- :func:`forget_user`: delete everything stored about a user — profile items *and*
  every conversation thread of theirs in the checkpoints;
- :func:`summarize_user`: the LLM writes the profile's interest summary from the
  user's rating history and what the profile remembers ("user understanding").
"""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel

from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.llm.client import LLMClient
from recpilot.prompts import load_prompt
from recpilot.stores.backends import feedback_store_for, trace_store_for
from recpilot.stores.checkpoints import close_checkpointer, forget_threads, open_checkpointer
from recpilot.stores.feedback import FEEDBACK_FILE
from recpilot.stores.profiles import (
    UserProfile,
    check_user_id,
    forget_profile,
    load_profile,
    open_store,
    save_profile,
    update_profile,
)
from recpilot.stores.traces.store import TRACES_FILE

SUMMARY_SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string", "minLength": 1, "maxLength": 400}},
    "required": ["summary"],
}


class Forgotten(BaseModel):
    """What :func:`forget_user` deleted."""

    user_id: str
    profile_items: int
    threads: list[str]
    traces: int = 0
    feedback_rows: int = 0


def record_feedback(settings: Settings, user_id: str, item_id: str, like: bool) -> UserProfile:
    """Store a like (``like=True``) or dislike of ``item_id`` in ``user_id``'s profile.

    Raises:
        ValueError: empty user id, or ``item_id`` not in the active dataset's catalogue.
        FileNotFoundError: the dataset is missing.
    """
    user_id = check_user_id(user_id)
    catalogue = Catalogue.load(settings.dataset_dir)
    if not catalogue.has(item_id):
        raise ValueError(f"unknown item {item_id!r} in dataset {settings.dataset!r}")
    with open_store(settings) as store:

        def apply(profile: UserProfile) -> bool:
            profile.like(item_id) if like else profile.dislike(item_id)
            return True

        return update_profile(store, user_id, apply)[0]


def show_profile(settings: Settings, user_id: str) -> UserProfile:
    """The stored profile of ``user_id`` (empty if none)."""
    with open_store(settings) as store:
        return load_profile(store, check_user_id(user_id))


def forget_user(settings: Settings, user_id: str) -> Forgotten:
    """Delete the user's profile items, every checkpoint thread of theirs, their run
    traces (``traces.sqlite``) and the feedback the HTTP service logged for them.

    SQLite files are vacuumed afterwards, so the deleted rows do not linger on disk.

    Returns:
        A :class:`Forgotten` listing what was deleted (zeros if nothing was stored).
    """
    user_id = check_user_id(user_id)
    # opened first: a broken file deletes nothing
    saver = open_checkpointer(settings.home, settings.database_url)
    try:
        with open_store(settings) as store:
            n_items = forget_profile(store, user_id)
            if n_items and isinstance(getattr(store, "conn", None), sqlite3.Connection):
                store.conn.execute("VACUUM")  # deleted rows must not linger in free pages
        threads = forget_threads(saver, user_id)
        if threads and isinstance(getattr(saver, "conn", None), sqlite3.Connection):
            saver.conn.commit()
            saver.conn.execute("VACUUM")
    finally:
        close_checkpointer(saver)
    n_traces = n_feedback = 0
    if settings.database_url or (settings.home / TRACES_FILE).exists():
        traces = trace_store_for(settings)
        try:
            n_traces = traces.delete_user(user_id)
            if n_traces:
                traces.vacuum()
        finally:
            traces.close()
    if settings.database_url or (settings.home / FEEDBACK_FILE).exists():
        n_feedback = feedback_store_for(settings).delete_user(user_id)
    return Forgotten(
        user_id=user_id, profile_items=n_items, threads=threads, traces=n_traces,
        feedback_rows=n_feedback,
    )  # fmt: skip


def history_lines(catalogue: Catalogue, user_id: str, profile: UserProfile, n: int = 15) -> str:
    """The user's best-rated items (then the profile's likes), one per line."""
    lines = []
    if catalogue.known_user(user_id):
        frame = catalogue.user_history(user_id)
        if "rating" in frame:
            frame = frame.sort_values("rating", ascending=False, kind="stable")
        for row in frame.head(n).to_dict("records"):
            item = catalogue.get(row["item_id"])
            stars = row.get("rating")
            lines.append(
                f"- {item.title} ({item.year or '?'}; {', '.join(item.categories)}; {stars})"
            )
    for item_id in profile.liked[-n:]:
        if catalogue.has(item_id):
            item = catalogue.get(item_id)
            cats = ", ".join(item.categories)
            lines.append(f"- {item.title} ({item.year or '?'}; {cats}; liked)")
    return "\n".join(lines)


def summarize_user(
    settings: Settings, catalogue: Catalogue, llm: LLMClient, user_id: str
) -> UserProfile:
    """Have the LLM write ``summary`` of the user's profile; stored and returned.

    Raises:
        ValueError: nothing is known about the user (no history, no stored likes).
        recpilot.llm.client.LLMError: the LLM failed or answered outside the schema.
    """
    user_id = check_user_id(user_id)
    with open_store(settings) as store:
        profile = load_profile(store, user_id)
        history = history_lines(catalogue, user_id, profile)
        if not history:
            raise ValueError(f"nothing known about user {user_id!r} to summarize")
        extra = []
        if profile.disliked:
            titles = [catalogue.get(i).title for i in profile.disliked if catalogue.has(i)]
            extra.append("Disliked: " + "; ".join(titles) + ".")
        if profile.avoid_categories:
            extra.append("Never wants: " + ", ".join(profile.avoid_categories) + ".")
        if profile.preferences:
            extra.append("Asked for: " + "; ".join(profile.preferences[-3:]) + ".")
        prompt = load_prompt("summarize").format(history=history, extra="\n".join(extra))
        out = llm.json(
            [{"role": "user", "content": prompt}], SUMMARY_SCHEMA, purpose="summarize",
            max_tokens=120,
        )  # fmt: skip
        profile.summary = out["summary"].strip()
        return save_profile(store, profile)
