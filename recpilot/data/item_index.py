"""Vector index of item texts in Chroma (HNSW, cosine space), for semantic recall.

Vectors are always computed by a recpilot :class:`~recpilot.data.embeddings.Encoder` and
passed to Chroma explicitly; the collection has no embedding function, so Chroma never
embeds (its default would download a model at run time).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from recpilot.config.settings import Settings
    from recpilot.data.embeddings import Encoder

#: Texts encoded (and added to Chroma) per step of :meth:`ItemIndex.build`.
BUILD_CHUNK = 1024
#: Neighbour lists an index keeps (per item and list length; oldest dropped first).
NEIGHBOUR_CACHE = 4096
#: HNSW settings of new collections (ef_search 200 > Chroma's 100: better recall at n=100).
HNSW_CONFIG = {"space": "cosine", "ef_search": 200}
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


class IndexNotBuiltError(RuntimeError):
    """The item collection is missing or a build did not finish."""


class UnknownItemError(KeyError):
    """Some item ids are not in the index."""

    def __str__(self) -> str:
        """The message, without KeyError's quoting."""
        return str(self.args[0]) if self.args else ""


def collection_name(dataset: str) -> str:
    """Chroma collection name for ``dataset``: ``items-<dataset>``.

    Raises:
        ValueError: the name breaks Chroma's rule (3-512 chars of ``[a-zA-Z0-9._-]``,
            alphanumeric at both ends).
    """
    name = f"items-{dataset}"
    if not _NAME_RE.match(name):
        raise ValueError(f"dataset name {dataset!r} gives an invalid Chroma collection {name!r}")
    return name


class ItemIndex:
    """One dataset's item vectors in a Chroma collection ``items-<dataset>``.

    Create with :meth:`open`. Similarities are cosine, ``1 - chroma_distance``, in [-1, 1].

    A finished collection's handle, its item count, the vectors read by :meth:`vectors`
    and the last :data:`NEIGHBOUR_CACHE` neighbour lists of :meth:`neighbours` are kept
    for the instance's lifetime (a built collection never changes: ``recpilot index``
    deletes it and creates a new one), so a query costs one Chroma call instead of three
    and a repeated seed item none — over a Chroma server each call is an HTTP round trip.
    When the collection was rebuilt or deleted meanwhile (Chroma's ``NotFoundError`` for
    the kept handle) the handle is looked up again once.

    Args:
        client: A Chroma client.
        name: Collection name (see :func:`collection_name`).
    """

    def __init__(self, client: ClientAPI, name: str) -> None:
        self.client = client
        self.name = name
        self._kept: Collection | None = None  # a finished collection's handle
        self._kept_vectors: dict[str, np.ndarray] = {}  # of the kept collection
        self._kept_neighbours: dict[tuple[str, int], list[tuple[str, float]]] = {}

    @classmethod
    def open(cls, settings: Settings) -> ItemIndex:
        """Connect to the index of ``settings.dataset`` (does not create or build it).

        ``settings.chroma_host`` set: ``HttpClient(chroma_host, chroma_port)``; else a
        ``PersistentClient`` at ``settings.chroma_dir`` (created if missing). Telemetry off.

        Raises:
            ValueError: the dataset name cannot form a collection name.
            ConnectionError: the Chroma server cannot be reached (the message says how
                to start it or to use the local index instead).
        """
        import chromadb
        import httpx
        from chromadb.config import Settings as ChromaSettings

        name = collection_name(settings.dataset)
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.chroma_host:
            host, port = settings.chroma_host, settings.chroma_port
            try:
                client = chromadb.HttpClient(host=host, port=port, settings=chroma_settings)
            except ValueError as err:  # chromadb: "Could not connect to a Chroma server"
                raise ConnectionError(
                    f"cannot reach the Chroma server at {host}:{port} ({err}); start it "
                    f"(`chroma run --path DIR --host {host} --port {port}`), fix "
                    "RECPILOT_CHROMA_HOST/RECPILOT_CHROMA_PORT, or unset RECPILOT_CHROMA_HOST "
                    "to use the local index folder"
                ) from err
            # chromadb's HTTP session has no timeout: a hung server would hang every
            # request that reads the index; bound each call instead (it then fails, and
            # recall falls back without that channel).
            session = getattr(getattr(client, "_server", None), "_session", None)
            if session is not None:
                session.timeout = httpx.Timeout(settings.chroma_timeout_s)
        else:
            settings.chroma_dir.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(
                path=str(settings.chroma_dir), settings=chroma_settings
            )
        return cls(client, name)

    def _collection(self) -> Collection | None:
        from chromadb.errors import NotFoundError

        try:
            return self.client.get_collection(self.name, embedding_function=None)
        except NotFoundError:
            return None

    def _built(self) -> Collection:
        col = self._kept
        if col is not None:
            return col
        col = self._collection()
        if col is None or not (col.metadata or {}).get("complete"):
            state = "missing" if col is None else "incomplete"
            raise IndexNotBuiltError(
                f"item index {self.name!r} is {state}: run `recpilot index` first"
            )
        self._kept_vectors, self._kept_neighbours = {}, {}
        self._kept = col
        return col

    def _on_built(self, call: Callable[[Collection], Any]) -> Any:
        """``call(collection)``; once more with a fresh handle if the kept one is gone."""
        from chromadb.errors import NotFoundError

        col = self._built()
        try:
            return call(col)
        except NotFoundError:
            if self._kept is not col:
                raise
            self._kept = None  # rebuilt or deleted since: look it up again
            return call(self._built())

    def is_built(self) -> bool:
        """True when the collection exists and its last :meth:`build` finished."""
        col = self._collection()
        return col is not None and bool((col.metadata or {}).get("complete"))

    def matches(self, ids: Sequence[str], texts: Sequence[str]) -> bool:
        """False when the finished build embedded other ids or texts than these.

        Indexes built before the fingerprint was recorded count as matching.

        Raises:
            IndexNotBuiltError: no finished build.
        """
        recorded = self.metadata().get("texts_sha256")
        return recorded is None or recorded == texts_fingerprint(ids, texts)

    def count(self) -> int:
        """Number of items stored (0 when the collection does not exist)."""
        col = self._collection()
        return 0 if col is None else col.count()

    def metadata(self) -> dict[str, Any]:
        """Collection metadata: ``encoder`` (name), ``dim``, ``count``, ``complete``.

        Raises:
            IndexNotBuiltError: no finished build.
        """
        return dict(self._built().metadata or {})

    def build(
        self,
        ids: list[str],
        texts: list[str],
        encoder: Encoder,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """(Re)create the collection with one vector per ``(id, text)``; returns the count.

        Deletes any old collection first, then encodes and adds in chunks of
        :data:`BUILD_CHUNK`, calling ``progress(done, total)`` after each chunk. Metadata
        records the encoder's ``name`` (class name if it has none) and ``dim``; ``complete``
        is set only at the end, so an interrupted build reads as not built.

        Args:
            ids: Item ids, unique, non-empty strings.
            texts: Item texts, same length as ``ids``.
            encoder: Produces the vectors (rows L2-normalised, width ``encoder.dim``).
            progress: Optional callback ``(items_done, items_total)``.

        Raises:
            ValueError: length mismatch, duplicate/empty ids, or vectors of the wrong shape.
        """
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        if len(set(ids)) != len(ids):
            raise ValueError("item ids must be unique")
        if any(not isinstance(i, str) or not i for i in ids):
            raise ValueError("item ids must be non-empty strings")
        dim = int(encoder.dim)
        meta: dict[str, Any] = {
            "encoder": str(getattr(encoder, "name", type(encoder).__name__)),
            "dim": dim,
            "complete": False,
            "texts_sha256": texts_fingerprint(ids, texts),
        }
        self._kept, self._kept_vectors, self._kept_neighbours = None, {}, {}
        if self._collection() is not None:
            self.client.delete_collection(self.name)
        col = self.client.create_collection(
            self.name,
            configuration={"hnsw": HNSW_CONFIG},
            metadata=meta,
            embedding_function=None,
        )
        step = max(1, min(BUILD_CHUNK, self.client.get_max_batch_size()))
        for start in range(0, len(ids), step):
            vecs = encoder.encode(texts[start : start + step])
            if vecs.shape != (len(texts[start : start + step]), dim):
                raise ValueError(f"encoder returned shape {vecs.shape}, expected (n, {dim})")
            col.add(ids=ids[start : start + step], embeddings=np.asarray(vecs, np.float32))
            if progress is not None:
                progress(min(start + step, len(ids)), len(ids))
        col.modify(metadata={**meta, "count": len(ids), "complete": True})
        return col.count()

    def query(
        self, vectors: np.ndarray, n: int, where_ids: Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """Nearest items per query vector: ``[(item_id, cosine_similarity), ...]``, best first.

        Approximate (HNSW). Returns ``min(n, candidates)`` pairs per query.

        Args:
            vectors: Shape ``(q, dim)`` or ``(dim,)`` (one query), L2-normalised.
            n: Neighbours per query, >= 1.
            where_ids: Restrict the search to these item ids (``None``: all items).

        Raises:
            IndexNotBuiltError: no finished build ("run `recpilot index` first").
            ValueError: ``n`` < 1 or vector width differs from the stored ``dim``.
            UnknownItemError: ``where_ids`` holds ids not in the index.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return self._on_built(lambda col: self._query_on(col, vectors, n, where_ids))

    def _query_on(
        self, col: Collection, vectors: np.ndarray, n: int, where_ids: Sequence[str] | None
    ) -> list[list[tuple[str, float]]]:
        q = self._as_matrix(vectors, col)
        if len(q) == 0:
            return []
        kwargs: dict[str, Any] = {}
        count = (col.metadata or {}).get("count")  # written when the build finished
        limit = int(count) if isinstance(count, int) else col.count()
        if where_ids is not None:
            allowed = list(dict.fromkeys(where_ids))
            if not allowed:
                return [[] for _ in range(len(q))]
            self._check_known(col, allowed)
            kwargs["ids"] = allowed
            limit = len(allowed)
        if limit == 0:
            return [[] for _ in range(len(q))]
        res = col.query(
            query_embeddings=q, n_results=min(n, limit), include=["distances"], **kwargs
        )
        dists = res["distances"] or []
        return [
            [(i, 1.0 - float(d)) for i, d in zip(row_ids, row_d, strict=True)]
            for row_ids, row_d in zip(res["ids"], dists, strict=True)
        ]

    def neighbours(self, ids: list[str], n: int) -> list[list[tuple[str, float]]]:
        """Nearest items to each stored item of ``ids`` (its stored vector as the query,
        so the item itself comes first): ``query(vectors(ids), n)``, with each item's list
        kept (per ``(id, n)``) and asked of Chroma only the first time — i2i recall asks
        for the same seed items' neighbours request after request.

        Raises:
            IndexNotBuiltError, UnknownItemError, ValueError: as :meth:`query` and
                :meth:`vectors`.
        """
        col = self._built()
        kept = self._kept_neighbours if col is self._kept else {}
        missing = [i for i in dict.fromkeys(ids) if (i, n) not in kept]
        found: dict[str, list[tuple[str, float]]] = {}
        if missing:
            found = dict(zip(missing, self.query(self.vectors(missing), n), strict=True))
        for item_id, row in found.items():
            kept[(item_id, n)] = row
        while len(kept) > NEIGHBOUR_CACHE:
            kept.pop(next(iter(kept)))
        return [list(found[i] if i in found else kept[(i, n)]) for i in ids]

    def vectors(self, ids: list[str]) -> np.ndarray:
        """Stored vectors for ``ids``, float32, shape ``(len(ids), dim)``, rows in ``ids`` order.

        Raises:
            IndexNotBuiltError: no finished build.
            UnknownItemError: some ids are not in the index (the message lists a few).
        """
        return self._on_built(lambda col: self._vectors_of(col, ids))

    def _vectors_of(self, col: Collection, ids: list[str]) -> np.ndarray:
        dim = int((col.metadata or {})["dim"])
        if not ids:
            return np.zeros((0, dim), dtype=np.float32)
        kept = self._kept_vectors if col is self._kept else {}
        unique = [i for i in dict.fromkeys(ids) if i not in kept]
        found: dict[str, np.ndarray] = {}
        step = self.client.get_max_batch_size()
        for start in range(0, len(unique), step):
            res = col.get(ids=unique[start : start + step], include=["embeddings"])
            found.update(zip(res["ids"], np.asarray(res["embeddings"], np.float32), strict=True))
        missing = [i for i in unique if i not in found]
        if missing:
            raise UnknownItemError(f"{len(missing)} ids not in {self.name!r}, e.g. {missing[:5]}")
        kept.update(found)
        return np.stack([kept[i] if i in kept else found[i] for i in ids]).astype(np.float32)

    def _as_matrix(self, vectors: np.ndarray, col: Collection) -> np.ndarray:
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        dim = int((col.metadata or {})["dim"])
        if q.ndim != 2 or q.shape[1] != dim:
            raise ValueError(
                f"query vectors have shape {np.shape(vectors)}; the index holds {dim}-d vectors "
                f"from {(col.metadata or {}).get('encoder')!r}"
            )
        return q

    def _check_known(self, col: Collection, ids: list[str]) -> None:
        known: set[str] = set()
        step = self.client.get_max_batch_size()
        for start in range(0, len(ids), step):
            known.update(col.get(ids=ids[start : start + step], include=[])["ids"])
        missing = [i for i in ids if i not in known]
        if missing:
            raise UnknownItemError(f"{len(missing)} ids not in {self.name!r}, e.g. {missing[:5]}")


def texts_fingerprint(ids: Sequence[str], texts: Sequence[str]) -> str:
    """sha256 (hex) of ``id\ttext`` lines: what an index build embedded."""
    digest = hashlib.sha256()
    for item_id, text in zip(ids, texts, strict=True):
        digest.update(f"{item_id}\t{text}\n".encode())
    return digest.hexdigest()


def build_index(
    settings: Settings, progress: Callable[[int, int], None] | None = None
) -> int:
    """Embed every item text of ``settings.dataset`` into its Chroma index (the ``index``
    workflow; replaces the collection).

    Args:
        settings: data directory, dataset, embedding and Chroma settings.
        progress: called with ``(items done, total)`` as batches finish.

    Returns:
        The number of items indexed.

    Raises:
        FileNotFoundError: the dataset is missing.
    """
    from recpilot.data.catalogue import Catalogue
    from recpilot.data.embeddings import make_encoder

    catalogue = Catalogue.load(settings.dataset_dir)
    texts = [catalogue.item_text(p) for p in range(catalogue.ids.size)]
    return ItemIndex.open(settings).build(
        [str(i) for i in catalogue.ids], texts, make_encoder(settings), progress=progress
    )


def index_is_current(settings: Settings) -> bool:
    """True when ``settings.dataset``'s index is built from its current item texts."""
    from recpilot.data.catalogue import Catalogue

    index = ItemIndex.open(settings)
    if not index.is_built():
        return False
    catalogue = Catalogue.load(settings.dataset_dir)
    texts = [catalogue.item_text(p) for p in range(catalogue.ids.size)]
    return index.matches([str(i) for i in catalogue.ids], texts)
