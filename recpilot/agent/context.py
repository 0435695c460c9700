"""The per-turn context: what the funnel knows about the requesting user, built once a turn.

Recall, coarse ranking and fine ranking all need the user's history, liked and seen
items, the scorers' user states and the query embedding. :func:`turn_context` builds
them on first use in a turn and keeps them in ``Services.turns`` under the turn's
``turn_id`` (set by ``graph.turn_input``), so the later stages of the same turn reuse
them: one history lookup, one user state per scorer, one query encoding. They never
enter the graph state (arrays do not belong in checkpoints). Without a ``turn_id``
(the graph run by other tooling) the context is simply built again.

"Liked" is the dataset's rule (``Catalogue.liked``, from the dataset's meta).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from recpilot.agent.services import Services

TURNS_KEPT = 64  # contexts kept: more than the turns in flight at once (an evicted one is rebuilt)


@dataclass
class TurnContext:
    """What the funnel knows about the requesting user in this turn.

    Attributes:
        history: the user's interactions, oldest first (may be empty).
        liked_ids: liked item ids, most recent last (liked history rows by the dataset's
            rule, the profile's likes, then items named).
        seen: catalogue positions never to recommend (rated, shown, named, excluded,
            liked or disliked in the profile).
        recall_state: the recall model's user state (fitted, or solved from named,
            remembered and LLM-generated pseudo-interaction items), or None.
        coarse_state: the coarse model's user state (the same array when both slots
            hold one model), or None.
        query_vec: embedding of the request's query, shape (dim,), or None without one.
    """

    history: list[dict]
    liked_ids: list[str]
    seen: set[int]
    recall_state: np.ndarray | None
    coarse_state: np.ndarray | None
    query_vec: np.ndarray | None


class TurnCache:
    """A small thread-safe LRU of :class:`TurnContext` by turn id."""

    def __init__(self, size: int = TURNS_KEPT) -> None:
        self._size = size
        self._items: OrderedDict[str, TurnContext] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, turn_id: str) -> TurnContext | None:
        """The cached context of ``turn_id``, or None."""
        with self._lock:
            ctx = self._items.get(turn_id)
            if ctx is not None:
                self._items.move_to_end(turn_id)
            return ctx

    def put(self, turn_id: str, ctx: TurnContext) -> None:
        """Keep ``ctx``; the least recently used context beyond ``size`` is dropped."""
        with self._lock:
            self._items[turn_id] = ctx
            self._items.move_to_end(turn_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def build_turn_context(svc: Services, state: Any) -> TurnContext:
    """Build the :class:`TurnContext` of this turn from the state and the catalogue."""
    cat = svc.catalogue
    user_id = state.get("user_id")
    known = bool(user_id) and cat.known_user(user_id)
    history = cat.user_records(user_id) if known else []  # cached per user by the catalogue
    named = list(state["intent"].liked_items)
    profile = state.get("profile")
    remembered = [i for i in (profile.liked if profile else []) if cat.has(i)]
    disliked = [i for i in (profile.disliked if profile else []) if cat.has(i)]
    disliked += [i for i in (profile.seen if profile else []) if cat.has(i)]
    rated = cat.user_liked_ids(user_id) if known else []
    liked = list(dict.fromkeys(rated + remembered + named))
    constraints = state.get("thread_constraints")
    excluded = list(constraints.exclude_items) if constraints else []
    seen_ids = [h["item_id"] for h in history] + named + list(state.get("shown", [])) + excluded
    seen_ids += remembered + disliked
    seen = {cat.index_of[i] for i in seen_ids if i in cat.index_of}
    seeds = [*remembered, *named, *state.get("pseudo_items", [])]
    seed_pos = [cat.index_of[i] for i in seeds if i in cat.index_of]
    recall_state = svc.recall_model.user_vector(user_id, seed_pos)
    coarse_state = (
        recall_state
        if svc.coarse_model is svc.recall_model
        else svc.coarse_model.user_vector(user_id, seed_pos)
    )
    query = state["intent"].query
    query_vec = svc.encoder.encode([query])[0] if query else None
    return TurnContext(history, liked, seen, recall_state, coarse_state, query_vec)


def turn_context(svc: Services, state: Any) -> TurnContext:
    """This turn's context: cached by ``state['turn_id']``, built on first use."""
    turn_id = state.get("turn_id")
    if turn_id:
        ctx = svc.turns.get(turn_id)
        if ctx is not None:
            return ctx
    ctx = build_turn_context(svc, state)
    if turn_id:
        svc.turns.put(turn_id, ctx)
    return ctx
