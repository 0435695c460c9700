"""The scorer contract and its registry.

A scorer is a trained model that scores items for one user, in the spirit of RecBole's
model contract (``calculate_loss``/``predict``/``full_sort_predict``). Every kind is one
:class:`ScorerKind` in the registry, which gives its whole life cycle:

- :meth:`ScorerKind.fit` trains it on a :class:`TrainingData` (``recpilot train``, via
  :func:`recpilot.funnel.training.train_models`; evaluations fit on their splits);
- :meth:`Scorer.save` writes it to a models folder, :meth:`ScorerKind.load` reads it
  back (``build_services``);
- :meth:`Scorer.user_vector` gives the user's *state* from their id or seed items — an
  opaque array only the same scorer reads (ALS: a factor vector; the hybrid: the user's
  score row over the catalogue);
- :meth:`Scorer.scores` scores a list of catalogue positions (RecBole's ``predict``);
- :meth:`Scorer.score_all` scores every position (``full_sort_predict``), and
  :meth:`Scorer.top_n` keeps the best of them (the collaborative recall channel).

The graph has two slots for scorers: the *recall model* (collaborative recall) and the
*coarse model* (coarse ranking). ``settings.coarse_model`` picks the coarse one and
``settings.recall_model`` the recall one (None: the same object as the coarse one,
which is how every committed evaluation number was produced). A new kind is one module
that builds a :class:`ScorerKind` and calls :func:`register_scorer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel

from recpilot.config.settings import Settings
from recpilot.funnel.scorers.als import CollaborativeModel, ModelNotTrainedError
from recpilot.funnel.scorers.hybrid import HybridModel, HybridParams, load_params


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

    def save(self, directory: Path) -> None:
        """Write the fitted model to ``directory`` atomically (read back by ``load``)."""
        ...


@dataclass(frozen=True)
class TrainingData:
    """What a scorer is fitted on.

    Attributes:
        interactions: ``user_id``, ``item_id`` (str), ``timestamp`` (unix s), sorted by
            user then time (as :class:`~recpilot.data.catalogue.Catalogue` keeps them).
        index_of: item id → catalogue position (the scorer's item columns).
        n_items: catalogue size.
    """

    interactions: pd.DataFrame
    index_of: dict[str, int]
    n_items: int


Fit = Callable[[TrainingData, Settings, BaseModel | None], Scorer]
"""``(data, settings with the hyper-parameters, kind-specific params or None) → scorer``."""
Load = Callable[[Path, TrainingData], Scorer]
"""``(models folder, the data it was fitted on) → scorer``; raises ``ModelNotTrainedError``."""


@dataclass(frozen=True)
class ScorerKind:
    """One registered scorer kind.

    Attributes:
        name: the id used in settings (``coarse_model``, ``recall_model``) and traces.
        description: one line for ``recpilot train`` output and docs.
        fit: trains a scorer (see :data:`Fit`).
        load: reads a saved one (see :data:`Load`).
    """

    name: str
    description: str
    fit: Fit
    load: Load


def fit_als(data: TrainingData, settings: Settings, params: BaseModel | None = None) -> Scorer:
    """ALS with the settings' ``als_*`` hyper-parameters and seed (``params`` is not used)."""
    return CollaborativeModel.train(
        data.interactions,
        data.index_of,
        data.n_items,
        factors=settings.als_factors,
        iterations=settings.als_iterations,
        regularization=settings.als_regularization,
        alpha=settings.als_alpha,
        seed=settings.als_seed,
    )


def _load_als_checked(directory: Path, data: TrainingData) -> CollaborativeModel:
    """ALS from ``directory``, refused when fitted on a catalogue of another size."""
    als = CollaborativeModel.load(directory)
    if als.item_factors.shape[0] != data.n_items:
        raise ModelNotTrainedError(
            f"the model in {directory} has {als.item_factors.shape[0]} items, the catalogue "
            f"{data.n_items}; run `recpilot train` again"
        )
    return als


def load_als(directory: Path, data: TrainingData) -> Scorer:
    """The ALS model in ``directory`` (``als.npz`` …)."""
    return _load_als_checked(directory, data)


def fit_hybrid(
    data: TrainingData, settings: Settings, params: BaseModel | None = None
) -> Scorer:
    """ALS (settings' hyper-parameters) plus the hybrid's features with ``params``.

    Raises:
        TypeError: ``params`` is given but is not :class:`HybridParams`.
    """
    if params is not None and not isinstance(params, HybridParams):
        raise TypeError(f"hybrid params must be HybridParams, not {type(params).__name__}")
    als = fit_als(data, settings)
    return HybridModel(als, data.interactions, data.index_of, params or HybridParams())


def load_hybrid(directory: Path, data: TrainingData) -> Scorer:
    """ALS from ``directory`` and the hybrid's parameters (defaults if never saved)."""
    als = _load_als_checked(directory, data)
    return HybridModel(als, data.interactions, data.index_of, load_params(directory))


_SCORERS: dict[str, ScorerKind] = {}


def register_scorer(kind: ScorerKind) -> ScorerKind:
    """Add a scorer kind; re-registering a name replaces it (plug-ins, tests)."""
    _SCORERS[kind.name] = kind
    return kind


def unregister_scorer(name: str) -> None:
    """Remove a scorer kind (tests); unknown names are ignored."""
    _SCORERS.pop(name, None)


def scorer_names() -> list[str]:
    """Registered scorer kinds, in registration order."""
    return list(_SCORERS)


def get_scorer(name: str) -> ScorerKind:
    """The kind called ``name``.

    Raises:
        ValueError: no such kind; the message lists the known ones and the setting.
    """
    try:
        return _SCORERS[name]
    except KeyError:
        known = ", ".join(_SCORERS)
        raise ValueError(
            f"unknown scorer {name!r}; known: {known} "
            "(set RECPILOT_COARSE_MODEL / RECPILOT_RECALL_MODEL to one of them)"
        ) from None


def fit_scorer(
    name: str, data: TrainingData, settings: Settings, params: BaseModel | None = None
) -> Scorer:
    """Fit the kind ``name`` (see :meth:`ScorerKind.fit`).

    Raises:
        ValueError: unknown kind, or no interactions / unknown item ids in ``data``.
    """
    return get_scorer(name).fit(data, settings, params)


def load_scorer(name: str, directory: Path, data: TrainingData) -> Scorer:
    """Load the kind ``name`` saved in ``directory``.

    Raises:
        ValueError: unknown kind, or unreadable parameters.
        recpilot.funnel.scorers.als.ModelNotTrainedError: nothing saved there.
    """
    return get_scorer(name).load(directory, data)


register_scorer(
    ScorerKind("hybrid", "ALS + sequential co-visitation + recent popularity", fit_hybrid,
               load_hybrid)  # fmt: skip
)
register_scorer(ScorerKind("als", "implicit-feedback ALS alone", fit_als, load_als))
