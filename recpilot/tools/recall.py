"""Recall (candidate generation): several channels, merged with provenance.

Channels, each returning up to ``per_channel`` catalogue items that pass the hard
constraints and are not already seen:

- ``semantic``: vector search in Chroma from the request's text query.
- ``i2i``: item-to-item neighbours (item-text embeddings) of the user's liked items.
- ``collaborative``: top-N of the ALS model for the user's vector.
- ``popularity``: the most-interacted items.

Merging keeps, per candidate, every channel that produced it with that channel's
score (cosine similarity, ALS dot product, or interaction count), and for i2i the
liked item it is a neighbour of — the respond step uses this to ground its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from recpilot.tools.catalogue import Catalogue
from recpilot.tools.collaborative import CollaborativeModel
from recpilot.tools.embeddings import Encoder
from recpilot.tools.item_index import ItemIndex

Channel = Literal["semantic", "i2i", "collaborative", "popularity"]
CHANNELS: tuple[Channel, ...] = ("semantic", "i2i", "collaborative", "popularity")


@dataclass
class RecallCandidate:
    """One recalled item: its id and, per channel that produced it, that channel's score."""

    item_id: str
    sources: dict[str, float] = field(default_factory=dict)
    seed_item: str | None = None  # for i2i: the liked item this is a neighbour of

    def to_dict(self) -> dict:
        """Plain-dict form for graph state: ``{item_id, sources, seed_item}``."""
        return {"item_id": self.item_id, "sources": dict(self.sources), "seed_item": self.seed_item}


@dataclass
class RecallRequest:
    """What the recall stage needs to know about one request.

    Args:
        allowed: bool mask over catalogue positions (hard constraints applied).
        seen: catalogue positions to exclude (already rated or shown).
        query: free text for the semantic channel ("" = channel skipped).
        liked_ids: liked item ids, most recent last (seeds for i2i).
        user_vec: ALS user vector, or None (collaborative channel skipped).
        channels: which channels to run.
        per_channel: items per channel after filtering.
        i2i_seeds: how many of the most recent liked items seed i2i.
    """

    allowed: np.ndarray
    seen: set[int]
    query: str = ""
    liked_ids: list[str] = field(default_factory=list)
    user_vec: np.ndarray | None = None
    channels: tuple[str, ...] = CHANNELS
    per_channel: int = 100
    i2i_seeds: int = 5


class Recall:
    """The recall stage over one catalogue, its Chroma index and the ALS model."""

    def __init__(
        self,
        catalogue: Catalogue,
        index: ItemIndex,
        encoder: Encoder,
        collaborative: CollaborativeModel,
    ) -> None:
        self.catalogue = catalogue
        self.index = index
        self.encoder = encoder
        self.collaborative = collaborative
        self._pop_order = np.argsort(-catalogue.popularity, kind="stable")

    def run(self, req: RecallRequest) -> tuple[dict[str, RecallCandidate], dict[str, int]]:
        """Run the requested channels and merge them.

        Returns:
            ``(candidates by item id, number of items each channel contributed)``;
            insertion order is channel order, then channel rank.
        """
        mask = req.allowed.copy()
        if req.seen:
            mask[np.fromiter(req.seen, dtype=np.int64)] = False
        merged: dict[str, RecallCandidate] = {}
        counts: dict[str, int] = {}
        for channel in req.channels:
            hits = self._channel(channel, req, mask)
            counts[channel] = len(hits)
            for item_id, score, seed in hits:
                cand = merged.setdefault(item_id, RecallCandidate(item_id))
                cand.sources[channel] = score
                if seed is not None and cand.seed_item is None:
                    cand.seed_item = seed
        return merged, counts

    # -- channels ----------------------------------------------------------------------
    def _channel(
        self, channel: str, req: RecallRequest, mask: np.ndarray
    ) -> list[tuple[str, float, str | None]]:
        if channel == "semantic":
            return self._semantic(req, mask)
        if channel == "i2i":
            return self._i2i(req, mask)
        if channel == "collaborative":
            return self._collaborative(req, mask)
        if channel == "popularity":
            return self._popularity(req, mask)
        raise ValueError(f"unknown recall channel {channel!r}; known: {', '.join(CHANNELS)}")

    def _vector_hits(
        self, vectors: np.ndarray, n: int, mask: np.ndarray
    ) -> list[list[tuple[str, float]]]:
        """Nearest items per query vector, over-fetched then filtered by ``mask``."""
        fetch = min(self.catalogue.ids.size, max(3 * n, n + 50))
        out = []
        for hits in self.index.query(vectors, fetch):
            kept = [(i, s) for i, s in hits if mask[self.catalogue.index_of[i]]]
            out.append(kept[:n])
        return out

    def _semantic(self, req: RecallRequest, mask: np.ndarray) -> list[tuple[str, float, None]]:
        if not req.query.strip():
            return []
        vec = self.encoder.encode([req.query])
        return [(i, s, None) for i, s in self._vector_hits(vec, req.per_channel, mask)[0]]

    def _i2i(self, req: RecallRequest, mask: np.ndarray) -> list[tuple[str, float, str]]:
        seeds = [i for i in req.liked_ids if self.catalogue.has(i)][-req.i2i_seeds :]
        if not seeds:
            return []
        per_seed = max(1, req.per_channel // len(seeds))
        best: dict[str, tuple[float, str]] = {}
        neighbours = self._vector_hits(self.index.vectors(seeds), per_seed, mask)
        for seed, hits in zip(seeds, neighbours, strict=True):
            for item_id, sim in hits:
                if item_id not in best or sim > best[item_id][0]:
                    best[item_id] = (sim, seed)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[: req.per_channel]
        return [(i, sim, seed) for i, (sim, seed) in ranked]

    def _collaborative(self, req: RecallRequest, mask: np.ndarray) -> list[tuple[str, float, None]]:
        if req.user_vec is None:
            return []
        top = self.collaborative.top_n(req.user_vec, req.per_channel, mask)
        return [(str(self.catalogue.ids[p]), s, None) for p, s in top]

    def _popularity(self, req: RecallRequest, mask: np.ndarray) -> list[tuple[str, float, None]]:
        order = self._pop_order[mask[self._pop_order]][: req.per_channel]
        pop = self.catalogue.popularity
        return [(str(self.catalogue.ids[p]), float(pop[p]), None) for p in order]
