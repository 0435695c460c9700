"""Semantic recall: vector search in the item index from the request's text query."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recpilot.data.catalogue import Catalogue
from recpilot.funnel.recall.base import Hit, RecallChannel, RecallRequest, RecallSignals, register


@register
class SemanticChannel(RecallChannel):
    """Items whose text embedding is nearest to the query's (cosine similarity)."""

    name = "semantic"
    description = "vector search from the request text"
    plan_order = 10
    explain_order = 20
    evaluate_alone = False  # the offline protocol has no request text

    @classmethod
    def usable(cls, signals: RecallSignals) -> bool:
        """Needs request text."""
        return signals.has_query

    def retrieve(self, req: RecallRequest, mask: np.ndarray) -> list[Hit]:
        """Nearest items to the query vector (encoded here if the turn did not)."""
        if not req.query.strip():
            return []
        vec = (
            req.query_vec[None, :]
            if req.query_vec is not None
            else self.res.encoder.encode([req.query])
        )
        return [Hit(i, s) for i, s in self.vector_hits(vec, req.per_channel, mask)[0]]

    @classmethod
    def reason(cls, cand: Mapping[str, Any], catalogue: Catalogue, query: str) -> str | None:
        """``matches “<query>”`` (cut to 60 characters) when there is a query."""
        return f"matches “{query[:60]}”" if query else None
