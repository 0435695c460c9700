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
        """The ``per_channel`` most popular items among ``mask``."""
        order = self._order[mask[self._order]][: req.per_channel]
        pop = self.res.catalogue.popularity
        return [Hit(str(self.res.catalogue.ids[p]), float(pop[p])) for p in order]

    @classmethod
    def reason(cls, cand: Mapping[str, Any], catalogue: Catalogue, query: str) -> str | None:
        """``popular: N ratings``."""
        count = int(catalogue.popularity[catalogue.index_of[cand["item_id"]]])
        return f"popular: {count} ratings"
