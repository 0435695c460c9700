"""Coarse ranking: score a few hundred recalled candidates cheaply, keep a short list.

The score is a linear blend of min-max-normalised signals over the candidate set:

- the coarse scorer's score (``Scorer.scores``: ALS user · item, or the hybrid's blend;
  see ``scorers/``) when the user has a state, else log-popularity (a popularity prior
  for cold users);
- when the request carries a text query, the cosine similarity between the query
  embedding and the item-text embedding, with weight ``query_weight``;
- when the user stated soft preferences ("mostly dramas", "not a fan of musicals"),
  ``preference_weight`` × the item's preference score in [-1, 1] is added
  (:func:`recpilot.data.preferences.preference_scores`).
"""

from __future__ import annotations

import numpy as np

from recpilot.data.catalogue import Catalogue
from recpilot.funnel.scorers.registry import Scorer


def minmax(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant vector maps to all 0.5. Shape is kept."""
    if values.size == 0:
        return values
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.full_like(values, 0.5, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def coarse_rank(
    item_ids: list[str],
    catalogue: Catalogue,
    collaborative: Scorer,
    user_vec: np.ndarray | None,
    query_sims: np.ndarray | None = None,
    query_weight: float = 0.5,
    keep: int = 20,
    preference: np.ndarray | None = None,
    preference_weight: float = 0.3,
) -> list[tuple[str, float]]:
    """Order candidates by the coarse score and keep the best ``keep``.

    Args:
        item_ids: candidate ids (all in the catalogue), any order.
        catalogue: gives positions and popularity.
        collaborative: the coarse scorer (the ``coarse_model`` slot of the services).
        user_vec: the user's state for that scorer (``Scorer.user_vector``: an ALS factor
            vector, or the hybrid's score row over the catalogue), or None.
        query_sims: cosine similarity of each candidate to the request text, aligned
            with ``item_ids``; None when the request has no text.
        query_weight: weight of ``query_sims`` in [0, 1].
        keep: length of the returned short list.
        preference: soft-preference score of each candidate in [-1, 1], aligned with
            ``item_ids``, or None.
        preference_weight: its weight (added to the [0, 1] blend).

    Returns:
        ``[(item_id, score), ...]`` best first, at most ``keep`` long; the score is in
        [0, 1], shifted by at most ± ``preference_weight`` with preferences; ties
        broken by catalogue popularity then id, so the order is deterministic.
    """
    if not item_ids:
        return []
    positions = np.array([catalogue.index_of[i] for i in item_ids], dtype=np.int64)
    if user_vec is not None:
        base = minmax(collaborative.scores(user_vec, positions))
    else:
        base = minmax(np.log1p(catalogue.popularity[positions].astype(np.float32)))
    score = base
    if query_sims is not None and len(query_sims) == len(item_ids):
        score = (1 - query_weight) * base + query_weight * minmax(np.asarray(query_sims))
    if preference is not None and len(preference) == len(item_ids):
        score = score + preference_weight * np.asarray(preference, dtype=np.float32)
    pop = catalogue.popularity[positions]
    order = np.lexsort((np.array(item_ids), -pop, -score))[:keep]
    return [(item_ids[i], float(score[i])) for i in order]
