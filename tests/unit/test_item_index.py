"""ItemIndex on a real Chroma PersistentClient in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest

from recpilot.data.embeddings import MiniLMEncoder
from recpilot.data.item_index import (
    IndexNotBuiltError,
    ItemIndex,
    UnknownItemError,
    collection_name,
)

ITEMS = {
    "1": "Star Wars (1977). Genres: Action, Adventure, Romance, Sci-Fi, War.",
    "2": "Toy Story (1995). Genres: Animation, Children's, Comedy.",
    "3": "Scream (1996). Genres: Horror, Thriller.",
    "4": "Sleepless in Seattle (1993). Genres: Comedy, Romance.",
    "5": "Fargo (1996). Genres: Crime, Drama, Thriller.",
    "6": "The Lion King (1994). Genres: Animation, Children's, Musical.",
}


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder()


@pytest.fixture
def index(settings, encoder: MiniLMEncoder) -> ItemIndex:
    idx = ItemIndex.open(settings)
    idx.build(list(ITEMS), list(ITEMS.values()), encoder)
    return idx


def test_build_reports_count_metadata_and_progress(settings, encoder) -> None:
    idx = ItemIndex.open(settings)
    calls: list[tuple[int, int]] = []
    n = idx.build(
        list(ITEMS), list(ITEMS.values()), encoder, progress=lambda d, t: calls.append((d, t))
    )
    assert n == idx.count() == 6
    assert idx.is_built()
    assert calls[-1] == (6, 6)
    meta = idx.metadata()
    assert (meta["encoder"], meta["dim"], meta["complete"]) == (encoder.name, 384, True)
    assert idx.name == "items-movielens-100k"


def test_query_finds_expected_nearest_neighbours(index: ItemIndex, encoder) -> None:
    q = encoder.encode(["a scary slasher horror movie", "animated cartoon for kids with songs"])
    hits = index.query(q, n=3)
    assert len(hits) == 2 and all(len(h) == 3 for h in hits)
    assert hits[0][0][0] == "3"
    assert hits[1][0][0] in {"6", "2"}
    sims = [s for _, s in hits[1]]
    assert sims == sorted(sims, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in sims)


def test_query_with_a_stored_vector_returns_itself_with_similarity_one(index: ItemIndex) -> None:
    v = index.vectors(["5"])
    best_id, best_sim = index.query(v[0], n=1)[0][0]
    assert best_id == "5"
    assert best_sim == pytest.approx(1.0, abs=1e-4)


def test_query_clamps_n_and_honours_where_ids(index: ItemIndex, encoder) -> None:
    q = encoder.encode(["horror"])
    assert len(index.query(q, n=100)[0]) == 6
    restricted = index.query(q, n=10, where_ids=["1", "4"])[0]
    assert {i for i, _ in restricted} == {"1", "4"}
    with pytest.raises(UnknownItemError, match="nope"):
        index.query(q, n=2, where_ids=["1", "nope"])


def test_query_rejects_wrong_width(index: ItemIndex) -> None:
    with pytest.raises(ValueError, match="384-d"):
        index.query(np.ones((1, 10), dtype=np.float32), n=1)


def test_vectors_round_trip_in_requested_order(index: ItemIndex, encoder) -> None:
    ids = ["4", "1", "4"]
    expected = encoder.encode([ITEMS[i] for i in ids])
    got = index.vectors(ids)
    assert got.shape == (3, 384) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5


def test_vectors_unknown_id_is_a_clear_key_error(index: ItemIndex) -> None:
    with pytest.raises(KeyError, match="missing-id"):
        index.vectors(["1", "missing-id"])


def test_rebuild_replaces_the_collection(index: ItemIndex, encoder) -> None:
    n = index.build(
        ["a", "b"], ["Heat (1995). Genres: Crime.", "Babe (1995). Genres: Comedy."], encoder
    )
    assert n == index.count() == 2
    with pytest.raises(UnknownItemError):
        index.vectors(["1"])
    assert {i for i, _ in index.query(encoder.encode(["pig"]), n=5)[0]} == {"a", "b"}


def test_index_persists_across_open(index: ItemIndex, settings) -> None:
    again = ItemIndex.open(settings)
    assert again.is_built() and again.count() == 6


def test_missing_index_raises_run_index_first(settings) -> None:
    idx = ItemIndex.open(settings)
    assert not idx.is_built() and idx.count() == 0
    with pytest.raises(IndexNotBuiltError, match="run `recpilot index` first"):
        idx.query(np.zeros((1, 384), dtype=np.float32), n=5)
    with pytest.raises(IndexNotBuiltError):
        idx.vectors(["1"])


def test_build_validates_inputs(settings, encoder) -> None:
    idx = ItemIndex.open(settings)
    with pytest.raises(ValueError, match="unique"):
        idx.build(["1", "1"], ["a", "b"], encoder)
    with pytest.raises(ValueError, match="2 ids but 1 texts"):
        idx.build(["1", "2"], ["a"], encoder)


def test_collection_name_validation() -> None:
    assert collection_name("ml-latest-small") == "items-ml-latest-small"
    with pytest.raises(ValueError, match="invalid Chroma collection"):
        collection_name("bad name/")


def test_a_serving_index_follows_a_rebuild_by_another_process(index: ItemIndex, settings, encoder):
    """The service keeps the collection's handle and the vectors it read; a rebuild by
    ``recpilot index`` elsewhere (another client: a new collection) is picked up on the
    next call, never answered from the deleted one."""
    assert index.vectors(["1"]).shape == (1, 384)  # kept
    other = ItemIndex.open(settings)  # e.g. `recpilot index` in another process
    other.build(["a", "b"], ["Heat (1995). Genres: Crime.", "Babe (1995). Genres: Comedy."],
                encoder)  # fmt: skip
    assert {i for i, _ in index.query(encoder.encode(["pig"]), n=5)[0]} == {"a", "b"}
    with pytest.raises(UnknownItemError):
        index.vectors(["1"])  # the kept vector of the old build is not served


def test_repeated_vectors_and_queries_do_not_ask_chroma_again(index: ItemIndex, encoder):
    calls: list[str] = []
    real_get = index.client.get_collection

    def counting_get(*args, **kwargs):
        calls.append("get_collection")
        return real_get(*args, **kwargs)

    index.client.get_collection = counting_get  # type: ignore[method-assign]
    index._kept = None
    first = index.vectors(["2", "5"])
    for _ in range(3):
        again = index.vectors(["5", "2"])
        index.query(encoder.encode(["horror"]), n=2)
    assert calls == ["get_collection"]  # looked up once, then kept
    assert np.array_equal(again, first[::-1])


def test_neighbours_are_the_query_by_stored_vectors_and_asked_once(index: ItemIndex):
    direct = index.query(index.vectors(["3", "5"]), 4)
    calls: list[int] = []
    real_query = index.query

    def counting_query(vectors, n, where_ids=None):
        calls.append(len(vectors))
        return real_query(vectors, n, where_ids)

    index.query = counting_query  # type: ignore[method-assign]
    assert index.neighbours(["3", "5"], 4) == direct
    assert index.neighbours(["5", "3", "5"], 4) == [direct[1], direct[0], direct[1]]
    assert index.neighbours(["1", "3"], 4)[0][0][0] == "1"  # the item itself first
    assert calls == [2, 1]  # "3" and "5" once, then only the new "1"
