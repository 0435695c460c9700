import numpy as np
import pytest

from recpilot.data.catalogue import Catalogue, Constraints
from recpilot.data.embeddings import make_encoder
from recpilot.data.item_index import ItemIndex
from recpilot.funnel.coarse_rank import coarse_rank, minmax
from recpilot.funnel.recall import Recall, RecallRequest
from recpilot.funnel.scorers.als import CollaborativeModel


@pytest.fixture(scope="module")
def parts(tiny_settings):
    catalogue = Catalogue.load(tiny_settings.dataset_dir)
    model = CollaborativeModel.load(tiny_settings.models_dir)
    recall = Recall(catalogue, ItemIndex.open(tiny_settings), make_encoder(tiny_settings), model)
    return catalogue, model, recall


def test_channels_merge_with_provenance(parts):
    catalogue, model, recall = parts
    seen = {catalogue.index_of[i] for i in ("1", "2")}
    req = RecallRequest(
        allowed=np.ones(len(catalogue), dtype=bool),
        seen=seen,
        query="animated musical for children",
        liked_ids=["1", "2"],
        user_vec=model.user_vector("u1"),
        per_channel=5,
    )
    merged, counts = recall.run(req)
    assert set(counts) == {"semantic", "i2i", "collaborative", "popularity"}
    assert all(0 < n <= 5 for n in counts.values())
    assert "1" not in merged and "2" not in merged
    assert "3" in merged and "semantic" in merged["3"].sources  # The Lion King
    i2i = [c for c in merged.values() if "i2i" in c.sources]
    assert i2i and all(c.seed_item in {"1", "2"} for c in i2i)


def test_hard_constraints_filter_every_channel(parts):
    catalogue, model, recall = parts
    cons = Constraints(exclude_categories=["Horror"], year_min=1990, year_max=1999)
    req = RecallRequest(
        allowed=catalogue.allowed_mask(cons),
        seen=set(),
        query="scary horror film",
        liked_ids=["4"],
        user_vec=model.user_vector("u7"),
        per_channel=20,
    )
    merged, _ = recall.run(req)
    assert merged
    for item_id in merged:
        item = catalogue.get(item_id)
        assert "Horror" not in item.categories
        assert 1990 <= item.year <= 1999


def test_unknown_channel_is_an_error(parts):
    catalogue, _, recall = parts
    req = RecallRequest(allowed=np.ones(len(catalogue), bool), seen=set(), channels=("magic",))
    with pytest.raises(ValueError, match="unknown recall channel"):
        recall.run(req)


def test_coarse_rank_keeps_best_and_is_deterministic(parts):
    catalogue, model, _ = parts
    ids = [str(i) for i in catalogue.ids]
    vec = model.user_vector("u1")
    ranked = coarse_rank(ids, catalogue, model, vec, keep=5)
    assert len(ranked) == 5
    assert ranked == coarse_rank(list(reversed(ids)), catalogue, model, vec, keep=5)
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    expected = sorted(ids, key=lambda i: -float(model.scores(vec, [catalogue.index_of[i]])[0]))
    assert ranked[0][0] == expected[0]


def test_coarse_rank_cold_user_uses_popularity(parts):
    catalogue, model, _ = parts
    ids = [str(i) for i in catalogue.ids]
    ranked = coarse_rank(ids, catalogue, model, None, keep=3)
    top_pop = str(catalogue.ids[int(np.argmax(catalogue.popularity))])
    assert ranked[0][0] == top_pop


def test_query_similarity_moves_items(parts):
    catalogue, model, _ = parts
    ids = ["4", "1"]  # Scream, Toy Story
    sims = np.array([0.9, 0.1])
    ranked = coarse_rank(ids, catalogue, model, None, query_sims=sims, query_weight=1.0)
    assert [i for i, _ in ranked] == ["4", "1"]


def test_minmax():
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0, 1, 0.5])
    np.testing.assert_allclose(minmax(np.array([1.0, 1.0])), [0.5, 0.5])
