"""User profiles as the service shows them: dataset history, feedback, long-term memory.

The long-term profile store (LangGraph store, ``recpilot.memory.profiles``) comes with
issue #4. The service talks to it only through :class:`LongTermProfiles`; until it is
wired in, :func:`long_term_profiles` finds none and profiles show the dataset history and
the service's feedback only.

Wiring, once ``recpilot.memory.profiles`` exists: give it a function
``service_profile_source(settings) -> LongTermProfiles`` (an object with ``get`` and
``delete`` below), and the service uses it — nothing here changes.
"""

from __future__ import annotations

import importlib
import math
from collections import Counter
from typing import Any, Protocol

from recpilot.agent.settings import Settings
from recpilot.service.feedback import FeedbackStore
from recpilot.service.schemas import HistoryItem, ProfileDeleted, ProfileOut
from recpilot.tools.catalogue import Catalogue

LIKED_RATING = 4.0


def _number(value: Any) -> float | None:
    """A float, or None for missing/NaN (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class LongTermProfiles(Protocol):
    """What the service needs from the long-term profile store."""

    def get(self, user_id: str) -> dict[str, Any] | None:
        """The stored profile as JSON-able data, or None when there is none."""
        ...

    def delete(self, user_id: str) -> bool:
        """Forget the user's stored profile; True if there was one."""
        ...


def long_term_profiles(settings: Settings) -> LongTermProfiles | None:
    """The long-term store's adapter, if ``recpilot.memory.profiles`` provides one."""
    try:
        module = importlib.import_module("recpilot.memory.profiles")
    except ImportError:
        return None
    factory = getattr(module, "service_profile_source", None)
    return factory(settings) if callable(factory) else None


class ProfileService:
    """Reads and deletes user profiles for the HTTP service.

    Args:
        catalogue: the active dataset (history, titles).
        feedback: the service's feedback store.
        long_term: the long-term profile store, or None.
    """

    def __init__(
        self, catalogue: Catalogue, feedback: FeedbackStore, long_term: LongTermProfiles | None
    ) -> None:
        self.catalogue = catalogue
        self.feedback = feedback
        self.long_term = long_term

    def get(self, user_id: str) -> ProfileOut | None:
        """The user's profile, or None when recpilot knows nothing about the user."""
        cat = self.catalogue
        known = cat.known_user(user_id)
        history = cat.user_history(user_id).to_dict("records") if known else []
        feedback = self.feedback.of_user(user_id)
        long_term = self.long_term.get(user_id) if self.long_term else None
        if not known and not feedback and not long_term:
            return None
        liked = Counter(
            c
            for h in history
            if (_number(h.get("rating")) or 0) >= LIKED_RATING
            for c in cat.get(str(h["item_id"])).categories
        )
        recent = [
            HistoryItem(
                item_id=str(h["item_id"]),
                title=cat.get(str(h["item_id"])).title,
                rating=_number(h.get("rating")),
                timestamp=int(ts) if (ts := _number(h.get("timestamp"))) is not None else None,
            )
            for h in reversed(history[-20:])
        ]
        return ProfileOut(
            user_id=user_id,
            known=known,
            history_count=len(history),
            recent_history=recent,
            top_categories=liked.most_common(8),
            feedback=feedback,
            long_term=long_term,
        )

    def delete(self, user_id: str) -> ProfileDeleted:
        """Delete what the user gave recpilot: feedback and the long-term profile."""
        removed = self.feedback.delete_user(user_id)
        long_term = self.long_term.delete(user_id) if self.long_term else False
        return ProfileDeleted(
            user_id=user_id, deleted_feedback=removed, deleted_long_term=long_term
        )
