"""Tune the coarse ranker on the validation items (never the test items).

Two small grids, each scored by full-ranking NDCG@10 of the validation item (phase
``"valid"``: the model is trained without the validation and test items):

1. ALS (``implicit``): factors × regularization × alpha (iterations fixed).
2. The hybrid prototype (:mod:`recpilot.funnel.scorers.hybrid`) on top of the best ALS:
   co-visitation structure (window, symmetric, damping) × popularity window × blend
   weights (``als_weight``, ``pop_weight``; ``covisit_weight`` = 1).

Scoring here is vectorised over users (a whole score matrix at once) but uses the same
model classes as the graph; the harness re-checks the chosen configurations through the
graph on the same validation items and reports both.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel

from recpilot.evals.metrics import hit_rate_at_k, ndcg_at_k
from recpilot.funnel.scorers.als import CollaborativeModel
from recpilot.funnel.scorers.hybrid import HybridModel, HybridParams

ALS_GRID: dict[str, list[Any]] = {
    "factors": [32, 64, 128],
    "regularization": [0.05, 0.5],
    "alpha": [1.0, 2.0, 5.0],
}
ALS_ITERATIONS = 20
COVISIT_GRID: dict[str, list[Any]] = {
    "window": [3, 5],
    "symmetric": [False, True],
    "damping": [0.0, 0.3],
    "pop_days": [7.0, 30.0],
}
WEIGHT_GRID: dict[str, list[float]] = {
    "als_weight": [0.0, 0.1, 0.3, 0.5, 1.0, 2.0],
    "pop_weight": [0.0, 0.1, 0.2, 0.4, 0.8],
}
SELECT_METRIC = "NDCG@10"

Progress = Callable[[str, int, int], None]  # (label, done, total)


class AlsParams(BaseModel):
    """ALS hyper-parameters (``CollaborativeModel.train`` keywords)."""

    factors: int = 64
    iterations: int = 20
    regularization: float = 0.05
    alpha: float = 2.0


class GridPoint(BaseModel):
    """One evaluated configuration: its parameters and validation metrics."""

    params: dict[str, Any]
    metrics: dict[str, float]


class TuningResult(BaseModel):
    """Chosen configurations, every grid point, and a feature ablation (validation)."""

    select_metric: str = SELECT_METRIC
    als: AlsParams
    als_metrics: dict[str, float]
    als_grid: list[GridPoint]
    hybrid: HybridParams
    hybrid_metrics: dict[str, float]
    hybrid_grid: list[GridPoint]
    ablation: dict[str, dict[str, float]] = {}


def ablation_blends(p: HybridParams) -> dict[str, tuple[float, float, float]]:
    """Feature subsets of the chosen hybrid as ``(w_als, w_cov, w_pop)``, by name."""
    return {
        "ALS alone": (1.0, 0.0, 0.0),
        "co-visitation alone": (0.0, 1.0, 0.0),
        "time-window popularity alone": (0.0, 0.0, 1.0),
        "ALS + co-visitation": (p.als_weight or 1.0, p.covisit_weight, 0.0),
        "co-visitation + popularity": (0.0, p.covisit_weight, p.pop_weight or 0.1),
        "ALS + popularity": (p.als_weight or 1.0, 0.0, p.pop_weight or 0.1),
        "all three (chosen)": (p.als_weight, p.covisit_weight, p.pop_weight),
    }


def ablation(
    model: HybridModel, users: list[str], targets: np.ndarray, allowed: np.ndarray
) -> dict[str, dict[str, float]]:
    """Full-ranking metrics of each feature subset (:func:`ablation_blends`) of ``model``.

    Args:
        model: a hybrid model (its ``params`` give the chosen weights).
        users: users to score (trained on).
        targets: catalogue position of each user's held-out item.
        allowed: bool (n_items,), the item universe.

    Returns:
        ``{subset name: {"NDCG@10", "HR@10", "NDCG@20", "HR@20"}}``.
    """
    feats = model.feature_rows(users)
    rows = np.array([model.user_row[u] for u in users])
    seen = model.user_items[rows]
    out = {}
    for name, (a, c, p) in ablation_blends(model.params).items():
        scores = a * feats["als"] + c * feats["covisit"] + p * feats["pop"]
        out[name] = _metrics(full_ranks(scores, seen, allowed, targets))
    return out


def full_ranks(
    scores: np.ndarray, seen: sp.csr_matrix, allowed: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Rank of each user's target among allowed, unseen items: 1 + #items scoring higher.

    Args:
        scores: shape (n_users, n_items).
        seen: CSR (n_users, n_items), non-zero = the user's training items (excluded).
        allowed: bool (n_items,), the item universe.
        targets: catalogue position of each user's target, shape (n_users,).

    Returns:
        int ranks, shape (n_users,). Ties are pessimistic: every other item scoring
        exactly the target's score is counted above it (so constant scores give the
        worst rank, never rank 1).
    """
    return RankCounter(seen, allowed, targets).ranks(scores)


class RankCounter:
    """:func:`full_ranks` for many score matrices over the same users, seen items,
    universe and targets: the excluded cells are computed once.

    Every excluded cell (outside ``allowed``, seen, or the target itself) counts as
    scoring ``-inf``, exactly as if the scores there were replaced by ``-inf``: it is
    above the target only when the target's own score is ``-inf``.

    Args:
        seen, allowed, targets: as in :func:`full_ranks`.
    """

    def __init__(self, seen: sp.csr_matrix, allowed: np.ndarray, targets: np.ndarray) -> None:
        n_users, n_items = len(targets), len(allowed)
        self.targets = np.asarray(targets)
        self.idx = np.arange(n_users)
        excluded = np.broadcast_to(~allowed[None, :], (n_users, n_items)).copy()
        rows, cols = seen.nonzero()
        excluded[rows, cols] = True
        self.target_excluded = excluded[self.idx, self.targets].copy()
        excluded[self.idx, self.targets] = True  # the target itself is not "above" itself
        self.kept = ~excluded
        self.n_excluded = excluded.sum(axis=1)

    def ranks(self, scores: np.ndarray) -> np.ndarray:
        """Ranks of the targets under ``scores`` (n_users, n_items); int, shape (n_users,)."""
        target = np.where(self.target_excluded, -np.inf, scores[self.idx, self.targets])
        above = ((scores >= target[:, None]) & self.kept).sum(axis=1)
        return above + np.where(target == -np.inf, self.n_excluded, 0) + 1


def _metrics(ranks: np.ndarray) -> dict[str, float]:
    r = ranks.tolist()
    return {
        "NDCG@10": round(ndcg_at_k(r, 10), 5),
        "HR@10": round(hit_rate_at_k(r, 10), 5),
        "NDCG@20": round(ndcg_at_k(r, 20), 5),
        "HR@20": round(hit_rate_at_k(r, 20), 5),
    }


def train_als(
    train: pd.DataFrame, index_of: dict[str, int], n_items: int, p: AlsParams, seed: int
) -> CollaborativeModel:
    """``CollaborativeModel.train`` with ``p``'s hyper-parameters."""
    return CollaborativeModel.train(
        train,
        index_of,
        n_items,
        factors=p.factors,
        iterations=p.iterations,
        regularization=p.regularization,
        alpha=p.alpha,
        seed=seed,
    )


def tune(
    train: pd.DataFrame,
    targets: dict[str, str],
    index_of: dict[str, int],
    n_items: int,
    allowed: np.ndarray,
    seed: int,
    progress: Progress | None = None,
    als_grid: dict[str, list[Any]] | None = None,
    covisit_grid: dict[str, list[Any]] | None = None,
    weight_grid: dict[str, list[float]] | None = None,
) -> TuningResult:
    """Grid-search ALS, then the hybrid prototype, by validation NDCG@10.

    Args:
        train: the ``"valid"`` phase training interactions (no validation/test items).
        targets: ``{user_id: validation item id}``.
        index_of: item id → catalogue position.
        n_items: catalogue size.
        allowed: bool (n_items,), the item universe.
        seed: ALS seed.
        progress: called ``(label, done, total)`` after each grid point.
        als_grid, covisit_grid, weight_grid: override the default grids.

    Returns:
        The :class:`TuningResult`; ties go to the earlier grid point.
    """
    say = progress or (lambda *_: None)
    als_grid = als_grid or ALS_GRID
    covisit_grid = covisit_grid or COVISIT_GRID
    weight_grid = weight_grid or WEIGHT_GRID
    users = sorted(targets)
    tpos = np.array([index_of[targets[u]] for u in users], dtype=np.int64)

    best_als: tuple[float, AlsParams, dict[str, float], CollaborativeModel] | None = None
    als_points: list[GridPoint] = []
    combos = list(itertools.product(*als_grid.values()))
    structures = list(itertools.product(*covisit_grid.values()))
    for k, values in enumerate(combos):
        p = AlsParams(iterations=ALS_ITERATIONS, **dict(zip(als_grid, values, strict=True)))
        model = train_als(train, index_of, n_items, p, seed)
        rows = np.array([model.user_row[u] for u in users])
        scores = model.user_factors[rows] @ model.item_factors.T
        m = _metrics(full_ranks(scores, model.user_items[rows], allowed, tpos))
        als_points.append(GridPoint(params=p.model_dump(), metrics=m))
        if best_als is None or m[SELECT_METRIC] > best_als[0]:
            best_als = (m[SELECT_METRIC], p, m, model)
        say("tuning ALS on validation", k + 1, len(combos) + len(structures))
    assert best_als is not None
    _, als_p, als_m, als_model = best_als

    best_h: tuple[float, HybridParams, dict[str, float]] | None = None
    h_points: list[GridPoint] = []
    rows = np.array([als_model.user_row[u] for u in users])
    counter = RankCounter(als_model.user_items[rows], allowed, tpos)
    weights = list(itertools.product(*weight_grid.values()))
    for k, values in enumerate(structures):
        structure = dict(zip(covisit_grid, values, strict=True))
        model_h = HybridModel(als_model, train, index_of, HybridParams(**structure))
        feats = model_h.feature_rows(users)
        for wvalues in weights:
            params = HybridParams(**structure, **dict(zip(weight_grid, wvalues, strict=True)))
            model_h.params = params
            m = _metrics(counter.ranks(model_h.blend(feats)))
            h_points.append(GridPoint(params=params.model_dump(), metrics=m))
            if best_h is None or m[SELECT_METRIC] > best_h[0]:
                best_h = (m[SELECT_METRIC], params, m)
        say("tuning the hybrid on validation", len(combos) + k + 1, len(combos) + len(structures))
    assert best_h is not None
    chosen = HybridModel(als_model, train, index_of, best_h[1])
    return TuningResult(
        ablation=ablation(chosen, users, tpos, allowed),
        als=als_p,
        als_metrics=als_m,
        als_grid=als_points,
        hybrid=best_h[1],
        hybrid_metrics=best_h[2],
        hybrid_grid=h_points,
    )


def tune_on_validation(settings: Any, seed: int = 0) -> tuple[Any, TuningResult]:
    """The ``train --tune`` workflow's first step: choose ALS and hybrid hyper-parameters
    by NDCG@10 of each user's validation item (second-last interaction, leave-one-out).

    Args:
        settings: :class:`~recpilot.config.settings.Settings` of the dataset.
        seed: ALS seed.

    Returns:
        ``(settings with the chosen als_* values, the tuning result)``; pass
        ``result.hybrid`` to :func:`recpilot.funnel.training.train_models`.

    Raises:
        ValueError: the dataset is too small to split.
    """
    from recpilot.data.catalogue import Catalogue
    from recpilot.evals.split import leave_one_out

    catalogue = Catalogue.load(settings.dataset_dir)
    split = leave_one_out(catalogue.interactions)
    allowed = np.zeros(catalogue.ids.size, dtype=bool)
    allowed[[catalogue.index_of[i] for i in split.universe]] = True
    chosen = tune(
        split.train_frame("valid"), split.targets("valid"), catalogue.index_of,
        catalogue.ids.size, allowed, seed=seed,
    )  # fmt: skip
    tuned = settings.model_copy(update={f"als_{k}": v for k, v in chosen.als.model_dump().items()})
    return tuned, chosen
