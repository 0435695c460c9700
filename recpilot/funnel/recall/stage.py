"""The recall stage: run the planned channels and merge their hits with provenance.

Each channel returns up to ``per_channel`` catalogue items that pass the hard
constraints and are not already seen. Merging keeps, per candidate, every channel that
produced it with that channel's score (cosine similarity, model score, or interaction
count), and for i2i the liked item it is a neighbour of — the respond step uses this to
ground its reasons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recpilot.funnel.recall.base import (
    RecallChannel,
    RecallRequest,
    RecallResources,
    channel_names,
    get_channel,
)

if TYPE_CHECKING:
    from recpilot.data.catalogue import Catalogue
    from recpilot.data.embeddings import Encoder
    from recpilot.data.item_index import ItemIndex


@dataclass
class RecallCandidate:
    """One recalled item: its id and, per channel that produced it, that channel's score."""

    item_id: str
    sources: dict[str, float] = field(default_factory=dict)
    seed_item: str | None = None  # for i2i: the liked item this is a neighbour of

    def to_dict(self) -> dict:
        """Plain-dict form for graph state: ``{item_id, sources, seed_item}``."""
        return {"item_id": self.item_id, "sources": dict(self.sources), "seed_item": self.seed_item}


_log = logging.getLogger(__name__)


class Recall:
    """The recall stage over one catalogue, its item index and the recall model.

    Args:
        catalogue: the items.
        index: the item-text vector index.
        encoder: the text encoder (query embeddings).
        model: the recall model slot (``top_n`` for a user state), e.g. ALS or the hybrid.
    """

    def __init__(
        self, catalogue: Catalogue, index: ItemIndex, encoder: Encoder, model: Any
    ) -> None:
        self.resources = RecallResources(catalogue, index, encoder, model)
        self._channels: dict[type[RecallChannel], RecallChannel] = {}

    def channel(self, name: str) -> RecallChannel:
        """The channel instance for ``name`` (built on first use).

        Raises:
            ValueError: ``name`` is not a registered channel.
        """
        cls = get_channel(name)
        if cls not in self._channels:
            self._channels[cls] = cls(self.resources)
        return self._channels[cls]

    def run(self, req: RecallRequest) -> tuple[dict[str, RecallCandidate], dict[str, int]]:
        """Run the requested channels and merge them (a failing channel raises).

        Returns:
            ``(candidates by item id, number of items each channel contributed)``;
            insertion order is channel order, then channel rank.

        Raises:
            ValueError: an unknown channel name in ``req.channels``.
        """
        merged, counts, _ = self.run_tolerant(req, tolerate=False)
        return merged, counts

    def run_tolerant(
        self, req: RecallRequest, tolerate: bool = True
    ) -> tuple[dict[str, RecallCandidate], dict[str, int], dict[str, str]]:
        """:meth:`run`, but a channel whose backend fails (e.g. the Chroma server is down)
        contributes nothing instead of failing the request.

        Returns:
            ``(candidates, counts, failed)``: ``failed`` maps each failed channel to
            ``"ExceptionType: message"`` (its count is 0).

        Raises:
            ValueError: an unknown channel name in ``req.channels``.
        """
        mask = req.allowed.copy()
        if req.seen:
            mask[np.fromiter(req.seen, dtype=np.int64)] = False
        merged: dict[str, RecallCandidate] = {}
        counts: dict[str, int] = {}
        names = req.channels if req.channels is not None else tuple(channel_names())
        failed: dict[str, str] = {}
        for name in names:
            channel = self.channel(name)
            try:
                hits = channel.retrieve(req, mask)
            except Exception as err:  # a backend down: the other channels still answer
                if not tolerate:
                    raise
                _log.warning("recall channel %s failed: %s", name, err)
                failed[name] = f"{type(err).__name__}: {str(err)[:200]}"
                hits = []
            counts[name] = len(hits)
            for item_id, score, seed in hits:
                cand = merged.setdefault(item_id, RecallCandidate(item_id))
                cand.sources[name] = score
                if seed is not None and cand.seed_item is None:
                    cand.seed_item = seed
        return merged, counts, failed
