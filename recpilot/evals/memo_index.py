"""The item index with its answers remembered, for one evaluation run.

An evaluation asks Chroma the same questions thousands of times, and the index does
not change during the run. The product's :class:`~recpilot.data.item_index.ItemIndex`
already keeps the stored vectors and the seed items' neighbour lists (i2i) it read, but
asks Chroma every other ``query`` (a text query's vector); :class:`MemoIndex` answers
a repeated ``query`` or ``vectors`` call from memory, for every pipeline, protocol and
phase of the run.
The answers are the ones Chroma gave for the same arguments, so no result changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recpilot.data.item_index import ItemIndex


class MemoIndex(ItemIndex):
    """An :class:`ItemIndex` that remembers ``query`` and ``vectors`` answers.

    Use only while the collection does not change (an evaluation run). Answers are
    copied on the way out, so a caller cannot alter what is remembered.

    Args:
        inner: the open index (its client and collection name are reused).
    """

    def __init__(self, inner: ItemIndex) -> None:
        super().__init__(inner.client, inner.name)
        self._queries: dict[tuple, list[list[tuple[str, float]]]] = {}
        self._vectors: dict[tuple[str, ...], np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def query(
        self, vectors: np.ndarray, n: int, where_ids: Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """:meth:`ItemIndex.query`, remembered per (vectors, n, where_ids)."""
        q = np.ascontiguousarray(vectors, dtype=np.float32)
        key = (q.shape, q.tobytes(), n, None if where_ids is None else tuple(where_ids))
        found = self._queries.get(key)
        if found is None:
            self.misses += 1
            found = super().query(vectors, n, where_ids)
            self._queries[key] = found
        else:
            self.hits += 1
        return [list(row) for row in found]

    def vectors(self, ids: list[str]) -> np.ndarray:
        """:meth:`ItemIndex.vectors`, remembered per id list."""
        key = tuple(ids)
        found = self._vectors.get(key)
        if found is None:
            found = super().vectors(ids)
            self._vectors[key] = found
        return found.copy()
