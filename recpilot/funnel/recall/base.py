"""The recall-channel contract and its registry.

A recall channel is one way of producing candidates (RecBole's ``full_sort_predict``
restricted to a candidate budget). Everything the rest of recpilot knows about a channel
comes from here — the plan schema's ``enum`` and the plan prompt (``name``,
``description``), which channels a request can feed (:meth:`RecallChannel.usable`), the
merged candidates with provenance (:meth:`RecallChannel.retrieve`), the reason line of a
recommendation (:meth:`RecallChannel.reason`) and the offline evaluation's "channel
alone" pipelines (``evaluate_alone``). A new channel is one module that subclasses
:class:`RecallChannel` and decorates it with :func:`register`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from recpilot.data.catalogue import Catalogue
    from recpilot.data.embeddings import Encoder
    from recpilot.data.item_index import ItemIndex


class Hit(NamedTuple):
    """One item a channel returned: id, the channel's score, and the seed item (i2i)."""

    item_id: str
    score: float
    seed_item: str | None = None


@dataclass(frozen=True)
class RecallSignals:
    """What one request offers the recall channels.

    Attributes:
        has_history: the user has interactions the recall model was trained on.
        has_query: the request carries text for semantic search.
        has_liked: liked or seed items are known (history, profile, named, generated).
    """

    has_history: bool
    has_query: bool
    has_liked: bool


@dataclass
class RecallResources:
    """What channels read: the catalogue, the item index and encoder, the recall model.

    Attributes:
        model: the *recall* model slot (``top_n`` over the catalogue for a user state);
            may be a different object from the coarse scorer.
    """

    catalogue: Catalogue
    index: ItemIndex
    encoder: Encoder
    model: Any


@dataclass
class RecallRequest:
    """What the recall stage needs to know about one request.

    Args:
        allowed: bool mask over catalogue positions (hard constraints applied).
        seen: catalogue positions to exclude (already rated or shown).
        query: free text for the semantic channel ("" = channel skipped).
        query_vec: the query's embedding, shape (dim,), encoded once per turn (None:
            encoded by the semantic channel when needed).
        liked_ids: liked item ids, most recent last (seeds for i2i).
        user_vec: the recall model's user state, or None (collaborative channel skipped).
        channels: which channels to run, in this order (None: every registered one).
        per_channel: items per channel after filtering.
        i2i_seeds: how many of the most recent liked items seed i2i.
        preference: soft-preference score per catalogue position, shape (n_items,), in
            [-1, 1] (:func:`recpilot.data.preferences.preference_scores`), or None;
            channels without a score of their own (popularity) rank by it.
    """

    allowed: np.ndarray
    seen: set[int]
    query: str = ""
    query_vec: np.ndarray | None = None
    liked_ids: list[str] = field(default_factory=list)
    user_vec: np.ndarray | None = None
    channels: tuple[str, ...] | None = None
    per_channel: int = 100
    i2i_seeds: int = 5
    preference: np.ndarray | None = None


class RecallChannel(ABC):
    """One recall channel (see the module docstring).

    Class attributes:
        name: the id used in plans, candidates' ``sources`` and traces.
        description: a short phrase for the plan prompt, e.g. ``"most-watched items"``.
        plan_order: position among the channels in plans, the plan prompt and recall
            (lower first; ties in registration order).
        explain_order: position of this channel's fact in a reason line and in an item's
            ``sources`` (lower first).
        explains_alone: the channel's reason is given only when no other channel of the
            candidate has one (popularity).
        backstop: the plan always keeps this channel, so a result is always produced.
        evaluate_alone: the offline evaluation measures this channel alone (needs no
            request text).
        eval_name: that pipeline's name (default ``recall:<name>``).
        reads_user_state: the channel retrieves from the recall model's user state
            (``RecallRequest.user_vec``), so LLM-generated pseudo-interactions, which are
            folded into that state, can feed it (sample generation adds such channels).

    Args:
        resources: the catalogue, index, encoder and recall model of this run.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    plan_order: ClassVar[int] = 100
    explain_order: ClassVar[int] = 100
    explains_alone: ClassVar[bool] = False
    backstop: ClassVar[bool] = False
    evaluate_alone: ClassVar[bool] = True
    eval_name: ClassVar[str | None] = None
    reads_user_state: ClassVar[bool] = False

    def __init__(self, resources: RecallResources) -> None:
        self.res = resources

    @classmethod
    @abstractmethod
    def usable(cls, signals: RecallSignals) -> bool:
        """Whether this request can feed the channel (else the plan leaves it out)."""

    @abstractmethod
    def retrieve(self, req: RecallRequest, mask: np.ndarray) -> list[Hit]:
        """Up to ``req.per_channel`` hits among ``mask`` (bool, over catalogue positions),
        best first; an empty list when the request has no input for the channel."""

    @classmethod
    def reason(cls, cand: Mapping[str, Any], catalogue: Catalogue, query: str) -> str | None:
        """The fact this channel contributes to a recommendation's reason, or None.

        Args:
            cand: the candidate (``item_id``, ``sources``, ``seed_item``).
            catalogue: for titles and counts.
            query: the request text ("" = none).
        """
        return None

    # -- shared helper --------------------------------------------------------------------
    def vector_hits(
        self, vectors: np.ndarray, n: int, mask: np.ndarray
    ) -> list[list[tuple[str, float]]]:
        """Nearest items in the item index per query vector, over-fetched then filtered."""
        return self._filtered(self.res.index.query(vectors, self._fetch(n)), n, mask)

    def item_hits(self, ids: list[str], n: int, mask: np.ndarray) -> list[list[tuple[str, float]]]:
        """Nearest items to each indexed item of ``ids`` (``ItemIndex.neighbours``, kept
        between requests), over-fetched then filtered like :meth:`vector_hits`."""
        return self._filtered(self.res.index.neighbours(ids, self._fetch(n)), n, mask)

    def _fetch(self, n: int) -> int:
        return min(self.res.catalogue.ids.size, max(3 * n, n + 50))

    def _filtered(
        self, rows: list[list[tuple[str, float]]], n: int, mask: np.ndarray
    ) -> list[list[tuple[str, float]]]:
        index_of = self.res.catalogue.index_of
        return [[(i, s) for i, s in hits if mask[index_of[i]]][:n] for hits in rows]


_REGISTRY: dict[str, type[RecallChannel]] = {}


def register(cls: type[RecallChannel]) -> type[RecallChannel]:
    """Class decorator: add a channel to the registry.

    Raises:
        ValueError: a channel of that name is already registered.
    """
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"recall channel {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a channel from the registry (tests, plug-ins); unknown names are ignored."""
    _REGISTRY.pop(name, None)


@contextlib.contextmanager
def registered(cls: type[RecallChannel]) -> Iterator[type[RecallChannel]]:
    """Register ``cls`` for the duration of a ``with`` block (tests)."""
    register(cls)
    try:
        yield cls
    finally:
        unregister(cls.name)


def channels() -> list[type[RecallChannel]]:
    """Every registered channel, in plan order."""
    return sorted(_REGISTRY.values(), key=lambda c: c.plan_order)


def channel_names() -> list[str]:
    """Names of every registered channel, in plan order."""
    return [c.name for c in channels()]


def get_channel(name: str) -> type[RecallChannel]:
    """The channel class called ``name``.

    Raises:
        ValueError: no such channel (the message lists the known ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise ValueError(f"unknown recall channel {name!r}; known: {known}") from None


def usable_channels(signals: RecallSignals) -> list[str]:
    """Names of the channels this request can feed, in plan order."""
    return [c.name for c in channels() if c.usable(signals)]


def user_state_channels() -> list[str]:
    """Names of the channels that read the recall model's user state, in plan order."""
    return [c.name for c in channels() if c.reads_user_state]


def by_explain_order(names: list[str] | set[str] | Mapping[str, Any]) -> list[str]:
    """The given channel names that are registered, in explanation order."""
    ranked = sorted(channels(), key=lambda c: c.explain_order)
    return [c.name for c in ranked if c.name in names]
