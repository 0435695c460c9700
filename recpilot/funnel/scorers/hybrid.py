"""The default coarse model: ALS + sequential co-visitation + causal time-window popularity.

A user's next item is strongly tied to what they did just before and to what was
popular at that time — signals a bag-of-items ALS cannot see. On MovieLens 100K under
leave-one-out full ranking this blend lifts NDCG@10 from 0.041 (tuned ALS alone) to
0.105 (see the README's evaluation table; ``recpilot eval`` reproduces it).

Score of item ``j`` for user ``u``, each feature z-normalised over the catalogue for that
user (``z(x) = (x - mean(x)) / std(x)``):

    s(u, j) = w_als · z(ALS(u, j)) + w_cov · z(COV(u, j)) + w_pop · z(log1p(POP(u, j)))

- ``ALS(u, j)``: the implicit-ALS dot product (Hu, Koren & Volinsky, ICDM 2008).
- ``COV(u, j) = Σ_k decay^k · T̃[i_k, j]`` over the user's ``recent`` latest items
  ``i_0`` (most recent), ``i_1``, …: item-to-item co-visitation seeded by recent items, as
  in session-based kNN (Ludewig & Jannach, "Evaluation of session-based recommendation
  algorithms", UMUAI 2018) and item-to-item CF (Linden, Smith & York, IEEE Internet
  Computing 2003). ``T[i, j] = Σ 1/d`` over all users' training sequences where ``j``
  follows ``i`` by ``d <= window`` steps (both directions when ``symmetric``);
  ``T̃[i, j] = T[i, j] / ((n_i + 1)^(1 - damping) · (n_j + 1)^damping)`` with ``n_i``,
  ``n_j`` the row and column sums (``damping`` > 0 penalises popular targets).
- ``POP(u, j)``: interactions with ``j`` (all users, training data) in the
  ``pop_days`` days up to and including the user's last training interaction —
  popularity *at that time*, causal (no interaction after the user's last one counts).

Plugging in: :class:`HybridModel` has :class:`~recpilot.funnel.scorers.als.CollaborativeModel`'s
interface (the :class:`~recpilot.funnel.scorers.registry.Scorer` contract), so putting it
in the services' ``recall_model`` and ``coarse_model`` slots makes the unchanged graph use it
both in the collaborative recall channel (``top_n``) and in coarse ranking (``scores``).
Its "user vector" is the user's score row over the catalogue (shape ``(n_items,)``),
computed once per user and cached.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, Field

from recpilot.funnel.scorers.als import CollaborativeModel

DAY_S = 86_400  # seconds per day (timestamps are unix seconds)
ROW_CACHE_USERS = 4096  # score rows kept in memory (each n_items float32)
PARAMS_FILE = "hybrid.json"


class HybridParams(BaseModel):
    """Hyper-parameters of :class:`HybridModel`.

    The defaults are the values ``recpilot eval`` chose on MovieLens 100K's validation
    items (never the test items); ``recpilot train --tune`` re-tunes them on any dataset.
    """

    als_weight: float = Field(default=1.0, ge=0, description="Weight of z(ALS).")
    covisit_weight: float = Field(default=1.0, ge=0, description="Weight of z(COV).")
    pop_weight: float = Field(default=0.4, ge=0, description="Weight of z(log1p POP).")
    window: int = Field(default=5, ge=1, description="Max steps between co-visited items.")
    symmetric: bool = Field(default=False, description="Count pairs in both directions.")
    damping: float = Field(default=0.3, ge=0, le=1, description="Target-popularity damping.")
    decay: float = Field(default=0.7, gt=0, le=1, description="Weight decay per older item.")
    recent: int = Field(default=20, ge=1, description="Recent items seeding COV.")
    pop_days: float = Field(default=30.0, gt=0, description="Popularity window, days.")


def covisitation(
    positions: np.ndarray, users: np.ndarray, n_items: int, window: int, symmetric: bool
) -> sp.csr_matrix:
    """Co-visitation counts ``T[i, j] = Σ 1/d`` for ``j`` following ``i`` by ``d`` steps.

    Args:
        positions: catalogue position of each interaction, shape (n,), ordered by user
            then time.
        users: user code of each interaction, shape (n,), aligned with ``positions``.
        n_items: catalogue size.
        window: maximum step distance ``d``.
        symmetric: also count ``i`` following ``j`` (returns ``T + T^T``).

    Returns:
        CSR matrix (n_items, n_items), float64.
    """
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        same = users[d:] == users[:-d]
        rows.append(positions[:-d][same])
        cols.append(positions[d:][same])
        vals.append(np.full(int(same.sum()), 1.0 / d))
    r = np.concatenate(rows) if rows else np.empty(0, np.int64)
    c = np.concatenate(cols) if cols else np.empty(0, np.int64)
    v = np.concatenate(vals) if vals else np.empty(0)
    t = sp.csr_matrix((v, (r, c)), shape=(n_items, n_items))
    t.sum_duplicates()
    return (t + t.T).tocsr() if symmetric else t


def _z(x: np.ndarray) -> np.ndarray:
    """Row-wise z-score, shape kept; constant rows map to 0."""
    mean = x.mean(axis=1, keepdims=True)
    std = x.std(axis=1, keepdims=True)
    return (x - mean) / np.where(std > 1e-12, std, 1.0)


class HybridModel(CollaborativeModel):
    """ALS + co-visitation + time-window popularity behind the CollaborativeModel interface.

    Args:
        als: a fitted ALS model on the same training interactions (gives the ALS feature,
            the user index and ``knows``).
        train: training interactions (``user_id``, ``item_id``, ``timestamp``), ordered by
            user then time (ties in the split's order).
        index_of: item id → catalogue position.
        params: the blend and feature settings.

    Attributes:
        params: as given.
        n_items: catalogue size.
    """

    def __init__(
        self,
        als: CollaborativeModel,
        train: pd.DataFrame,
        index_of: dict[str, int],
        params: HybridParams,
    ) -> None:
        super().__init__(als.model, als.user_ids, als.user_items)
        self.params = params
        self.n_items = self.item_factors.shape[0]
        pos = train["item_id"].map(index_of).to_numpy(dtype=np.int64)
        codes = train["user_id"].map(self.user_row).to_numpy(dtype=np.int64)
        ts = train["timestamp"].to_numpy(dtype=np.int64)
        t = covisitation(pos, codes, self.n_items, params.window, params.symmetric)
        n_i = np.asarray(t.sum(axis=1)).ravel() + 1.0
        n_j = np.asarray(t.sum(axis=0)).ravel() + 1.0
        self._cov = (
            sp.diags(n_i ** -(1.0 - params.damping)) @ t @ sp.diags(n_j**-params.damping)
        ).tocsr()
        self._recent: dict[int, np.ndarray] = {}
        self._ref_t = np.zeros(len(self.user_ids), dtype=np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
        ends = np.r_[starts[1:], len(codes)]
        for s, e in zip(starts, ends, strict=True):
            self._recent[int(codes[s])] = pos[max(s, e - params.recent) : e][::-1]
            self._ref_t[codes[s]] = ts[s:e].max()
        order = np.argsort(ts, kind="stable")
        self._ts_sorted, self._pos_by_time = ts[order], pos[order]
        self._now = int(ts.max()) if ts.size else 0
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()  # LRU of score rows

    # -- features --------------------------------------------------------------------
    def _cov_rows(self, recents: list[np.ndarray]) -> np.ndarray:
        """COV for several users, shape (len(recents), n_items)."""
        rows, cols, vals = [], [], []
        for u, items in enumerate(recents):
            rows.extend([u] * len(items))
            cols.extend(items.tolist())
            vals.extend(self.params.decay ** np.arange(len(items)))
        w = sp.csr_matrix((vals, (rows, cols)), shape=(len(recents), self.n_items))
        return np.asarray((w @ self._cov).todense())

    def _pop_rows(self, ref_ts: np.ndarray) -> np.ndarray:
        """POP for several reference times (unix s), shape (len(ref_ts), n_items)."""
        span = self.params.pop_days * DAY_S
        lo = np.searchsorted(self._ts_sorted, ref_ts - span, side="right")
        hi = np.searchsorted(self._ts_sorted, ref_ts, side="right")
        out = np.zeros((len(ref_ts), self.n_items))
        for k, (a, b) in enumerate(zip(lo, hi, strict=True)):
            out[k] = np.bincount(self._pos_by_time[a:b], minlength=self.n_items)
        return out

    def feature_rows(self, user_ids: list[str]) -> dict[str, np.ndarray]:
        """z-normalised features of training users, each shape (len(user_ids), n_items).

        Args:
            user_ids: users the model was trained on.

        Returns:
            ``{"als", "covisit", "pop"}``.

        Raises:
            KeyError: a user is unknown.
        """
        rows = np.array([self.user_row[u] for u in user_ids], dtype=np.int64)
        empty = np.empty(0, np.int64)
        return {
            "als": _z(self.user_factors[rows] @ self.item_factors.T),
            "covisit": _z(self._cov_rows([self._recent.get(int(r), empty) for r in rows])),
            "pop": _z(np.log1p(self._pop_rows(self._ref_t[rows]))),
        }

    def blend(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """``w_als·als + w_cov·covisit + w_pop·pop`` (see the module docstring)."""
        p = self.params
        return (
            p.als_weight * features["als"]
            + p.covisit_weight * features["covisit"]
            + p.pop_weight * features["pop"]
        )

    def score_rows(self, user_ids: list[str]) -> np.ndarray:
        """Hybrid scores of training users over the catalogue, shape (n, n_items)."""
        return self.blend(self.feature_rows(user_ids))

    # -- the CollaborativeModel interface ----------------------------------------------
    def user_vector(
        self, user_id: str | None = None, liked_positions: object = ()
    ) -> np.ndarray | None:
        """The user's hybrid score row, shape (n_items,), or None if nothing is known.

        A training user gets the cached row; anyone else with liked items gets a row
        from those items (ALS half-step, COV seeded by them in the order given, POP at
        the latest training time).
        """
        if self.knows(user_id):
            assert user_id is not None
            if user_id in self._rows:
                self._rows.move_to_end(user_id)
            else:
                self._rows[user_id] = self.score_rows([user_id])[0].astype(np.float32)
                if len(self._rows) > ROW_CACHE_USERS:
                    self._rows.popitem(last=False)
            return self._rows[user_id]
        liked = [int(p) for p in liked_positions]  # type: ignore[attr-defined]
        if not liked:
            return None
        als_vec = super().user_vector(None, liked)
        assert als_vec is not None
        recent = np.array(liked[::-1][: self.params.recent], dtype=np.int64)
        feats = {
            "als": _z((self.item_factors @ als_vec)[None, :]),
            "covisit": _z(self._cov_rows([recent])),
            "pop": _z(np.log1p(self._pop_rows(np.array([self._now])))),
        }
        return self.blend(feats)[0].astype(np.float32)

    def scores(self, user_vec: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Hybrid scores of the given catalogue positions, shape (len(positions),)."""
        return user_vec[positions]

    def score_all(self, user_vec: np.ndarray) -> np.ndarray:
        """The user's row is already the score of every position (shape (n_items,))."""
        return np.asarray(user_vec, dtype=np.float64)

    def save(self, directory: Path) -> None:
        """Write the ALS files and ``hybrid.json`` to ``directory`` (each atomically).

        The co-visitation and popularity features are rebuilt from the training
        interactions on load, so only the ALS factors and the parameters are stored.
        """
        CollaborativeModel(self.model, self.user_ids, self.user_items).save(directory)
        save_params(directory, self.params)


def save_params(directory: Path, params: HybridParams) -> None:
    """Write ``params`` atomically to ``directory/hybrid.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{PARAMS_FILE}.tmp"
    tmp.write_text(params.model_dump_json(indent=2))
    os.replace(tmp, directory / PARAMS_FILE)


def load_params(directory: Path) -> HybridParams:
    """``directory/hybrid.json`` (written by ``recpilot train``), or the defaults if absent.

    Raises:
        ValueError: the file exists but is not valid parameters (message names the file).
    """
    path = directory / PARAMS_FILE
    if not path.exists():
        return HybridParams()
    try:
        return HybridParams.model_validate(json.loads(path.read_text()))
    except ValueError as exc:
        msg = f"{path}: invalid hybrid parameters ({exc}); run `recpilot train`"
        raise ValueError(msg) from exc


def coarse_model(
    als: CollaborativeModel,
    interactions: pd.DataFrame,
    index_of: dict[str, int],
    kind: Literal["hybrid", "als"],
    params: HybridParams | None = None,
) -> CollaborativeModel:
    """The coarse model the graph uses: ``als`` itself, or the hybrid built on it.

    Args:
        als: the fitted ALS model (trained on ``interactions``).
        interactions: ``user_id``, ``item_id``, ``timestamp``, sorted by user then time
            (as :class:`~recpilot.data.catalogue.Catalogue` keeps them).
        index_of: item id → catalogue position.
        kind: ``"hybrid"`` (default in settings) or ``"als"``.
        params: hybrid parameters (defaults if None).

    Returns:
        A :class:`~recpilot.funnel.scorers.als.CollaborativeModel` (building the hybrid's
        co-visitation matrix takes well under a second on MovieLens 100K).
    """
    if kind == "als":
        return als
    return HybridModel(als, interactions, index_of, params or HybridParams())
