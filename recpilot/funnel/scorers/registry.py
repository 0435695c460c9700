"""The coarse-scorer contract and its registry.

A scorer is a trained model that scores items for one user, in the spirit of RecBole's
model contract: it is fitted and saved by training (``recpilot train``, see
:mod:`recpilot.funnel.training`), loaded by :func:`load_scorer`, and then

- :meth:`Scorer.user_vector` gives the user's *state* from their id or seed items — an
  opaque array only the same scorer reads (ALS: a factor vector; the hybrid: the user's
  score row over the catalogue);
- :meth:`Scorer.scores` scores a list of catalogue positions (RecBole's ``predict``);
- :meth:`Scorer.score_all` scores every position (``full_sort_predict``), and
  :meth:`Scorer.top_n` keeps the best of them (the collaborative recall channel).

The graph has two slots for scorers: the *recall model* (collaborative recall) and the
*coarse model* (coarse ranking). ``settings.coarse_model`` picks the coarse one and
``settings.recall_model`` the recall one (None: the same object as the coarse one,
which is how every committed evaluation number was produced).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from recpilot.funnel.scorers.als import CollaborativeModel
from recpilot.funnel.scorers.hybrid import HybridModel, load_params


class Scorer(Protocol):
    """What the funnel calls on a coarse or recall model (see the module docstring)."""

    def knows(self, user_id: str | None) -> bool:
        """True if the user is in the training data (the *warm* path)."""
        ...

    def user_vector(
        self, user_id: str | None = None, liked_positions: object = ()
    ) -> np.ndarray | None:
        """The user's state from their id, else from seed item positions; None if unknown."""
        ...

    def scores(self, user_vec: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Scores of the given catalogue positions, shape (len(positions),)."""
        ...

    def score_all(self, user_vec: np.ndarray) -> np.ndarray:
        """Scores of every catalogue position, shape (n_items,)."""
        ...

    def top_n(
        self, user_vec: np.ndarray, n: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``n`` best ``(position, score)`` among ``allowed`` (bool mask), best first."""
        ...


ScorerBuilder = Callable[[CollaborativeModel, pd.DataFrame, dict[str, int], Path], Scorer]
"""``(fitted ALS, training interactions, item id → position, models dir) → scorer``."""


def _als(als: CollaborativeModel, train: pd.DataFrame, index_of: dict, models: Path) -> Scorer:
    return als


def _hybrid(als: CollaborativeModel, train: pd.DataFrame, index_of: dict, models: Path) -> Scorer:
    return HybridModel(als, train, index_of, load_params(models))


_SCORERS: dict[str, ScorerBuilder] = {"als": _als, "hybrid": _hybrid}


def register_scorer(name: str, builder: ScorerBuilder) -> None:
    """Add a scorer kind (built on the fitted ALS model and the training interactions)."""
    _SCORERS[name] = builder


def scorer_names() -> list[str]:
    """Registered scorer kinds."""
    return list(_SCORERS)


def build_scorer(
    kind: str,
    als: CollaborativeModel,
    interactions: pd.DataFrame,
    index_of: dict[str, int],
    models_dir: Path,
) -> Scorer:
    """The scorer ``kind`` on a fitted ALS model.

    Args:
        kind: a registered kind (``als``, ``hybrid``).
        als: the fitted ALS model (trained on ``interactions``).
        interactions: ``user_id``, ``item_id``, ``timestamp``, sorted by user then time.
        index_of: item id → catalogue position.
        models_dir: where training wrote parameters (``hybrid.json``).

    Raises:
        ValueError: unknown ``kind``, or unreadable parameters.
    """
    if kind not in _SCORERS:
        raise ValueError(f"unknown scorer {kind!r}; known: {', '.join(_SCORERS)}")
    return _SCORERS[kind](als, interactions, index_of, models_dir)
