"""User profiles as the service shows them: dataset history, feedback, long-term memory.

The long-term profile is the LangGraph store of :mod:`recpilot.stores.profiles` (the
one the graph reads and writes); deleting a profile is
:func:`recpilot.agent.profile_ops.forget_user` — the same as ``recpilot profile forget``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from langgraph.store.base import BaseStore

from recpilot.agent.profile_ops import Forgotten, forget_user
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.service.schemas import FeedbackRequest, HistoryItem, ProfileDeleted, ProfileOut
from recpilot.stores.feedback import FeedbackStore
from recpilot.stores.profiles import UserProfile, load_profile, update_profile

LIKED_RATING = 4.0  # feedback (1–5 stars): a rating at or above this counts as a like
DISLIKED_RATING = 2.0  # at or below: a dislike


def _number(value: Any) -> float | None:
    """A float, or None for missing/NaN (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class LongTermProfiles:
    """The long-term profile store as the service uses it.

    Args:
        settings: the data directory (for :func:`forget_user`).
        store: the store the Recommender's graph uses.
    """

    def __init__(self, settings: Settings, store: BaseStore) -> None:
        self.settings = settings
        self.store = store

    def get(self, user_id: str) -> dict[str, Any] | None:
        """The stored profile as JSON-able data, or None when nothing is stored."""
        profile = load_profile(self.store, user_id)
        return None if profile.is_empty() else profile.model_dump(mode="json")

    def record(self, fb: FeedbackRequest) -> bool:
        """Fold explicit feedback into the profile: like, dislike, or a rating (>= 4 like,
        <= 2 dislike). Returns True if the profile changed (clicks and skips do not)."""
        like = fb.kind == "like" or (fb.kind == "rating" and (fb.rating or 0) >= LIKED_RATING)
        dislike = fb.kind == "dislike" or (
            fb.kind == "rating" and (fb.rating or 5) <= DISLIKED_RATING
        )
        if not (like or dislike):
            return False

        def apply(profile: UserProfile) -> bool:
            profile.like(fb.item_id) if like else profile.dislike(fb.item_id)
            return True

        update_profile(self.store, fb.user_id, apply)  # under the user's lock
        return True

    def delete(self, user_id: str) -> Forgotten:
        """Forget the user: profile, chat threads, traces, feedback rows."""
        return forget_user(self.settings, user_id)


class ProfileService:
    """Reads and deletes user profiles for the HTTP service.

    Args:
        catalogue: the active dataset (history, titles).
        feedback: the service's feedback store.
        long_term: the long-term profile store (the graph's).
    """

    def __init__(
        self, catalogue: Catalogue, feedback: FeedbackStore, long_term: LongTermProfiles
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
        long_term = self.long_term.get(user_id)
        if not known and not feedback and not long_term:
            return None
        liked = Counter(
            c for i in cat.liked_ids(history) for c in cat.get(i).categories
        )  # "liked" by the dataset's rule (its meta), not the feedback scale below
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
        """Delete what the user gave recpilot: feedback, the long-term profile, their chat
        threads and traces (as ``recpilot profile forget``)."""
        gone = self.long_term.delete(user_id)
        return ProfileDeleted(
            user_id=user_id,
            deleted_feedback=gone.feedback_rows,
            deleted_long_term=gone.profile_items > 0,
            deleted_threads=gone.threads,
            deleted_traces=gone.traces,
        )
