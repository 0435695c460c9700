"""The item index for one evaluation run: exact nearest neighbours over the stored vectors.

The product asks Chroma (HNSW, approximate). An evaluation asks the same questions
thousands of times and needs the same answers in every process: Chroma's HNSW answers
are stable within a process but not between processes (on the 2.8k-item benchmark
index, 18 of 1,000 lists at n = 53 and 206 of 1,000 at n = 151 differed between two
processes), so with Chroma an evaluation's i2i numbers moved in their last digits from
run to run, and a forked worker process cannot call Chroma at all (its client's
threads are not copied: a query hangs).

:class:`ExactIndex` reads every item's stored vector from Chroma once, when it is made,
and then answers :meth:`query`, :meth:`neighbours` and :meth:`vectors` from memory by
exact cosine similarity (a dot product: the vectors are L2-normalised), best first, ties
in catalogue order; each query vector on its own, so that an answer does not depend on
what else was asked with it (a batched product rounds differently). The vectors are
the ones the product searches, so only HNSW's approximation is gone. After
:meth:`detach` (done in worker processes) it never touches Chroma.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from recpilot.data.item_index import ItemIndex, UnknownItemError

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection


class ExactIndex(ItemIndex):
    """An :class:`ItemIndex` answered exactly from the stored vectors of ``ids``.

    Args:
        inner: the open, built index (its client and collection name are reused).
        ids: the item ids to load (the catalogue's); each must be in the index.

    Raises:
        IndexNotBuiltError, UnknownItemError: as :meth:`ItemIndex.vectors`.
    """

    def __init__(self, inner: ItemIndex, ids: Sequence[str]) -> None:
        super().__init__(inner.client, inner.name)
        self._detached = False
        self._ids = [str(i) for i in ids]
        self._matrix = super().vectors(self._ids)  # (n_items, dim), float32
        self._kept_vectors.clear()  # the product's per-id cache: a second copy, not needed
        self._pos = {item_id: k for k, item_id in enumerate(self._ids)}
        self._neighbours: dict[tuple[str, int], list[tuple[str, float]]] = {}

    def detach(self) -> None:
        """Never call Chroma from now on (a forked worker: it would hang); what would
        need it raises :class:`RuntimeError` instead."""
        self._detached = True
        self._kept = None

    def _built(self) -> Collection:
        if self._detached:
            raise RuntimeError("the evaluation's item index is detached from Chroma here")
        return super()._built()

    def is_built(self) -> bool:
        """True (it holds every vector it answers from)."""
        return True

    def _positions(self, ids: Sequence[str]) -> np.ndarray:
        missing = [i for i in ids if i not in self._pos]
        if missing:
            raise UnknownItemError(f"{len(missing)} ids not in {self.name!r}, e.g. {missing[:5]}")
        return np.fromiter((self._pos[i] for i in ids), dtype=np.int64, count=len(ids))

    def vectors(self, ids: list[str]) -> np.ndarray:
        """Stored vectors for ``ids``, float32, shape ``(len(ids), dim)`` (a copy).

        Raises:
            UnknownItemError: some ids were not loaded.
        """
        return self._matrix[self._positions(ids)]

    def query(
        self, vectors: np.ndarray, n: int, where_ids: Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """Exact nearest items per query vector: ``[(item_id, cosine), ...]``, best first.

        Args and errors as :meth:`ItemIndex.query` (``n`` >= 1; width = the stored dim).
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        q = np.asarray(vectors, dtype=np.float32)
        q = q[None, :] if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self._matrix.shape[1]:
            raise ValueError(f"query vectors must be (q, {self._matrix.shape[1]}), got {q.shape}")
        allowed = None if where_ids is None else self._positions(list(where_ids))
        matrix = self._matrix if allowed is None else self._matrix[allowed]
        if matrix.shape[0] == 0:
            return [[] for _ in range(len(q))]
        keep = min(n, matrix.shape[0])
        out = []
        for vec in q:  # one product per query: a batched one rounds differently per batch
            row = matrix @ vec
            top = np.argsort(-row, kind="stable")[:keep]  # best first, ties in catalogue order
            pos = top if allowed is None else allowed[top]
            out.append([(self._ids[p], float(row[t])) for p, t in zip(pos, top, strict=True)])
        return out

    def neighbours(self, ids: list[str], n: int) -> list[list[tuple[str, float]]]:
        """Nearest items to each item of ``ids`` (its own vector as the query, so the item
        itself comes first), remembered per ``(id, n)`` for the run.

        Raises:
            UnknownItemError, ValueError: as :meth:`vectors` and :meth:`query`.
        """
        missing = [i for i in dict.fromkeys(ids) if (i, n) not in self._neighbours]
        if missing:
            rows = self.query(self.vectors(missing), n)
            self._neighbours.update({(i, n): row for i, row in zip(missing, rows, strict=True)})
        return [list(self._neighbours[(i, n)]) for i in ids]
