"""The classic trained model: implicit-feedback matrix factorisation (ALS).

Alternating Least Squares for implicit feedback — Hu, Koren & Volinsky, "Collaborative
Filtering for Implicit Feedback Datasets", ICDM 2008 — as implemented by the
``implicit`` library (Frederickson, https://github.com/benfred/implicit). recpilot
uses it twice: as the collaborative recall channel (top-N over the catalogue) and as
the coarse ranker's main score (user · item factors).

Item columns of the user×item matrix are catalogue positions (``Catalogue.ids``), so
no id translation happens on the hot path.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

MODEL_FILE = "als.npz"
USERS_FILE = "als_users.json"


class ModelNotTrainedError(FileNotFoundError):
    """No trained model on disk for this dataset (run ``recpilot train``)."""


class CollaborativeModel:
    """ALS factors plus the user index and training matrix they were fitted on.

    Args:
        model: a fitted ``implicit`` ALS model.
        user_ids: user id (str) of each matrix row, shape (n_users,).
        user_items: CSR matrix (n_users, n_items) of training confidences, columns
            are catalogue positions.
    """

    def __init__(
        self, model: AlternatingLeastSquares, user_ids: list[str], user_items: sp.csr_matrix
    ) -> None:
        self.model = model
        self.user_ids = list(user_ids)
        self.user_row = {u: i for i, u in enumerate(self.user_ids)}
        self.user_items = user_items
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)

    # -- training / persistence --------------------------------------------------------
    @classmethod
    def train(
        cls,
        interactions: pd.DataFrame,
        index_of: dict[str, int],
        n_items: int,
        factors: int = 64,
        iterations: int = 20,
        regularization: float = 0.05,
        alpha: float = 2.0,
        seed: int = 42,
    ) -> CollaborativeModel:
        """Fit ALS on binarised interactions (every rated item counts as a positive).

        Args:
            interactions: frame with ``user_id`` and ``item_id`` (str) columns.
            index_of: item id → catalogue position.
            n_items: catalogue size (matrix width).
            factors, iterations, regularization, alpha: ALS hyper-parameters
                (``alpha`` scales confidence, c = 1 + alpha·r, Hu et al. 2008).
            seed: random seed for the factor initialisation.

        Returns:
            The fitted model.

        Raises:
            ValueError: no interactions, or an item id missing from ``index_of``.
        """
        if interactions.empty:
            raise ValueError("cannot train on zero interactions")
        unknown = set(interactions["item_id"]) - index_of.keys()
        if unknown:
            raise ValueError(f"{len(unknown)} interaction item ids are not in the catalogue")
        user_ids = sorted(interactions["user_id"].unique().tolist())
        row_of = {u: i for i, u in enumerate(user_ids)}
        rows = interactions["user_id"].map(row_of).to_numpy()
        cols = interactions["item_id"].map(index_of).to_numpy()
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(user_ids), n_items)
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        with threadpool_limits(1, "blas"):  # implicit's advice: BLAS threads fight its own
            model = AlternatingLeastSquares(
                factors=factors,
                iterations=iterations,
                regularization=regularization,
                alpha=alpha,
                random_state=seed,
            )
            model.fit(matrix, show_progress=False)
        return cls(model, user_ids, matrix)

    def save(self, directory: Path) -> None:
        """Write the model atomically to ``directory`` (als.npz + als_users.json + matrix)."""
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            tmp_path = Path(tmp)
            self.model.save(str(tmp_path / MODEL_FILE))
            sp.save_npz(tmp_path / "user_items.npz", self.user_items)
            (tmp_path / USERS_FILE).write_text(json.dumps(self.user_ids))
            for name in (MODEL_FILE, "user_items.npz", USERS_FILE):
                os.replace(tmp_path / name, directory / name)

    @classmethod
    def load(cls, directory: Path) -> CollaborativeModel:
        """Load a model written by :meth:`save`.

        Raises:
            ModelNotTrainedError: the files are missing.
        """
        if not (directory / MODEL_FILE).exists():
            raise ModelNotTrainedError(
                f"no trained model in {directory}; run `recpilot train` first"
            )
        with threadpool_limits(1, "blas"):  # else implicit warns about BLAS threads
            model = AlternatingLeastSquares.load(str(directory / MODEL_FILE))
        user_items = sp.load_npz(directory / "user_items.npz").tocsr()
        user_ids = json.loads((directory / USERS_FILE).read_text())
        return cls(model, user_ids, user_items)

    # -- scoring -----------------------------------------------------------------------
    def knows(self, user_id: str | None) -> bool:
        """True when ``user_id`` was in the training data."""
        return user_id is not None and user_id in self.user_row

    def user_vector(
        self, user_id: str | None = None, liked_positions: Iterable[int] = ()
    ) -> np.ndarray | None:
        """The user's latent vector, shape (factors,), or None if nothing is known.

        A training user gets their fitted factors; anyone else with some liked items
        (e.g. items named in a chat, or LLM-generated pseudo-interactions) gets a
        vector solved from those items by one ALS half-step (``recalculate_user``).
        """
        if self.knows(user_id):
            return self.user_factors[self.user_row[user_id]]
        liked = sorted(set(int(p) for p in liked_positions))
        if not liked:
            return None
        row = sp.csr_matrix(
            (np.ones(len(liked), dtype=np.float32), ([0] * len(liked), liked)),
            shape=(1, self.item_factors.shape[0]),
        )
        return np.asarray(self.model.recalculate_user(0, row), dtype=np.float32).ravel()

    def scores(self, user_vec: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Dot-product scores of the given item positions, shape (len(positions),)."""
        return self.item_factors[positions] @ user_vec

    def score_all(self, user_vec: np.ndarray) -> np.ndarray:
        """Scores of every catalogue position, shape (n_items,), float."""
        return self.item_factors @ user_vec

    def top_n(
        self, user_vec: np.ndarray, n: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``n`` best item positions for ``user_vec`` among ``allowed`` (bool mask).

        Returns:
            ``[(position, score), ...]`` best first (ties in position order).
        """
        scores = np.asarray(self.score_all(user_vec), dtype=np.float64)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        n = min(n, int(np.isfinite(scores).sum()))
        if n <= 0:
            return []
        top = np.sort(np.argpartition(-scores, n - 1)[:n])
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(p), float(scores[p])) for p in top]
