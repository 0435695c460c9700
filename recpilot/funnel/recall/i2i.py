"""Item-to-item (i2i) recall: item-text neighbours of the user's most recent liked items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recpilot.data.catalogue import Catalogue
from recpilot.funnel.recall.base import Hit, RecallChannel, RecallRequest, RecallSignals, register


@register
class ItemToItemChannel(RecallChannel):
    """Neighbours of each of the ``i2i_seeds`` latest liked items, best similarity first."""

    name = "i2i"
    description = "items similar to items the user liked"
    plan_order = 20
    explain_order = 10

    @classmethod
    def usable(cls, signals: RecallSignals) -> bool:
        """Needs liked (or seed) items."""
        return signals.has_liked

    def retrieve(self, req: RecallRequest, mask: np.ndarray) -> list[Hit]:
        """Up to ``per_channel`` neighbours; each keeps the seed it is most similar to."""
        cat = self.res.catalogue
        seeds = [i for i in req.liked_ids if cat.has(i)][-req.i2i_seeds :]
        if not seeds:
            return []
        per_seed = max(1, req.per_channel // len(seeds))
        best: dict[str, tuple[float, str]] = {}
        neighbours = self.item_hits(seeds, per_seed, mask)
        for seed, hits in zip(seeds, neighbours, strict=True):
            for item_id, sim in hits:
                if item_id not in best or sim > best[item_id][0]:
                    best[item_id] = (sim, seed)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[: req.per_channel]
        return [Hit(i, sim, seed) for i, (sim, seed) in ranked]

    @classmethod
    def reason(cls, cand: Mapping[str, Any], catalogue: Catalogue, query: str) -> str | None:
        """``similar to <seed title>, which you liked``."""
        seed = cand.get("seed_item")
        if not seed:
            return None
        return f"similar to {catalogue.get(seed).title}, which you liked"
