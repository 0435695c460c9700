"""Collaborative recall: the recall model's top-N for the user's state (ALS or hybrid)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recpilot.data.catalogue import Catalogue
from recpilot.funnel.recall.base import Hit, RecallChannel, RecallRequest, RecallSignals, register


@register
class CollaborativeChannel(RecallChannel):
    """Top-N of the recall model (``RecallResources.model.top_n``)."""

    name = "collaborative"
    description = "a matrix-factorisation model of the user's ratings"
    plan_order = 30
    explain_order = 30
    reads_user_state = True

    @classmethod
    def usable(cls, signals: RecallSignals) -> bool:
        """Needs a rating history or liked items (a user state can be solved from them)."""
        return signals.has_history or signals.has_liked

    def retrieve(self, req: RecallRequest, mask: np.ndarray) -> list[Hit]:
        """The model's best ``per_channel`` items among ``mask``."""
        if req.user_vec is None:
            return []
        top = self.res.model.top_n(req.user_vec, req.per_channel, mask)
        return [Hit(str(self.res.catalogue.ids[p]), s) for p, s in top]

    @classmethod
    def reason(cls, cand: Mapping[str, Any], catalogue: Catalogue, query: str) -> str | None:
        """A fixed phrase: the model has no per-item explanation."""
        return "rated highly by people with tastes like yours"
