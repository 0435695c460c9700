"""Popularity recall: the most-interacted items (the backstop and the baseline)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recpilot.data.catalogue import Catalogue
from recpilot.funnel.recall.base import (
    Hit,
    RecallChannel,
    RecallRequest,
    RecallResources,
    RecallSignals,
    register,
)


@register
class PopularityChannel(RecallChannel):
    """Items by interaction count, most first (ties in catalogue order)."""

    name = "popularity"
    description = "most-watched items"
    plan_order = 40
    explain_order = 40
    explains_alone = True
    backstop = True
    eval_name = "popularity"

    def __init__(self, resources: RecallResources) -> None:
        super().__init__(resources)
        self._order = np.argsort(-resources.catalogue.popularity, kind="stable")

    @classmethod
    def usable(cls, signals: RecallSignals) -> bool:
        """Always: it needs nothing from the request."""
        return True

    def retrieve(self, req: RecallRequest, mask: np.ndarray) -> list[Hit]:
        """The ``per_channel`` most popular items among ``mask``.

        With soft preferences (``req.preference``, p in [-1, 1]) items are ordered by
        ``log1p(count) · (1 + p)`` instead: an item of every preferred category counts
        as if log-twice as popular, a disfavoured one sinks; popularity stays a prior,
        not a filter.
        """
        pop = self.res.catalogue.popularity
        if req.preference is not None:
            key = np.log1p(pop.astype(np.float64)) * (1.0 + req.preference)
            order = np.lexsort((np.arange(key.size), -key))
            order = order[mask[order]][: req.per_channel]
        else:
            order = self._order[mask[self._order]][: req.per_channel]
        return [Hit(str(self.res.catalogue.ids[p]), float(pop[p])) for p in order]

    @classmethod
    def reason(cls, cand: Mapping[str, Any], catalogue: Catalogue, query: str) -> str | None:
        """``popular: N ratings``."""
        count = int(catalogue.popularity[catalogue.index_of[cand["item_id"]]])
        return f"popular: {count} ratings"
