"""The hybrid coarse model (ALS + co-visitation + time-window popularity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recpilot.funnel.scorers.als import CollaborativeModel
from recpilot.funnel.scorers.hybrid import (
    DAY_S,
    HybridModel,
    HybridParams,
    covisitation,
    load_params,
    save_params,
)


def test_covisitation_counts_pairs_within_the_window() -> None:
    # user 0: items 0 → 1 → 2 ; user 1: items 2 → 0
    pos = np.array([0, 1, 2, 2, 0])
    users = np.array([0, 0, 0, 1, 1])
    t = covisitation(pos, users, 3, window=2, symmetric=False).toarray()
    expected = np.zeros((3, 3))
    expected[0, 1] = 1.0  # d = 1
    expected[1, 2] = 1.0
    expected[0, 2] = 0.5  # d = 2
    expected[2, 0] = 1.0  # user 1; no pair across users (2 → 2 would be)
    assert t == pytest.approx(expected)
    sym = covisitation(pos, users, 3, window=2, symmetric=True).toarray()
    assert sym == pytest.approx(expected + expected.T)


@pytest.fixture
def toy() -> tuple[pd.DataFrame, dict[str, int]]:
    rows = []
    t = 1_000_000
    for u in range(12):
        seq = [0, 1, 2, 3] if u % 2 else [4, 5, 6, 7]
        for k, i in enumerate(seq):
            rows.append({"user_id": f"u{u}", "item_id": f"i{i}", "timestamp": t + DAY_S * k})
    rows.append({"user_id": "late", "item_id": "i8", "timestamp": t + DAY_S * 100})
    rows.append({"user_id": "late", "item_id": "i0", "timestamp": t + DAY_S * 101})
    df = pd.DataFrame(rows).sort_values(["user_id", "timestamp"], kind="stable")
    index_of = {f"i{i}": i for i in range(10)}
    return df.reset_index(drop=True), index_of


def test_hybrid_scores_match_rows_and_follow_sequences(toy) -> None:
    df, index_of = toy
    als = CollaborativeModel.train(df, index_of, 10, factors=4, iterations=5)
    model = HybridModel(
        als, df, index_of, HybridParams(als_weight=0.0, pop_weight=0.0, symmetric=True, damping=0.0)
    )
    row = model.user_vector("u1")
    assert row is not None and row.shape == (10,)
    assert model.scores(row, np.array([2, 3])) == pytest.approx(model.score_rows(["u1"])[0][[2, 3]])
    # u1's last items are 3, 2, 1: their co-visited neighbours score above the other group
    assert row[[0, 1, 2, 3]].min() > row[[4, 5, 6, 7]].max()
    allowed = np.ones(10, dtype=bool)
    allowed[[1, 2, 3]] = False
    top = model.top_n(row, 2, allowed)
    assert top[0][0] == 0 and all(allowed[p] for p, _ in top)


def test_time_window_popularity_is_causal(toy) -> None:
    df, index_of = toy
    als = CollaborativeModel.train(df, index_of, 10, factors=4, iterations=5)
    params = HybridParams(als_weight=0.0, covisit_weight=0.0, pop_weight=1.0, pop_days=5)
    model = HybridModel(als, df, index_of, params)
    # u1 finished on day 3: item 8 (first seen on day 100) must not count for them
    pop = model._pop_rows(np.array([model._ref_t[model.user_row["u1"]]]))[0]
    assert pop[8] == 0 and pop[0] == 6
    late = model._pop_rows(np.array([model._ref_t[model.user_row["late"]]]))[0]
    assert late[8] == 1 and late[0] == 1


def test_unknown_user_gets_a_row_from_liked_items(toy) -> None:
    df, index_of = toy
    als = CollaborativeModel.train(df, index_of, 10, factors=4, iterations=5)
    model = HybridModel(als, df, index_of, HybridParams())
    assert model.user_vector("nobody") is None
    row = model.user_vector("nobody", [4, 5])
    assert row is not None and row[6] > row[2]


def test_params_round_trip_and_defaults_when_absent(tmp_path) -> None:
    assert load_params(tmp_path) == HybridParams()
    chosen = HybridParams(als_weight=0.5, window=3, pop_days=7.0)
    save_params(tmp_path, chosen)
    assert load_params(tmp_path) == chosen


def test_invalid_params_file_names_the_file(tmp_path) -> None:
    (tmp_path / "hybrid.json").write_text('{"window": 0}')
    with pytest.raises(ValueError, match="hybrid.json"):
        load_params(tmp_path)


def test_services_use_the_configured_coarse_model(tiny_settings) -> None:
    from recpilot.agent.services import build_services

    hybrid = build_services(tiny_settings, None).coarse_model
    als = build_services(tiny_settings.model_copy(update={"coarse_model": "als"}), None)
    assert isinstance(hybrid, HybridModel)
    assert type(als.coarse_model) is CollaborativeModel
    # same users, same ALS factors underneath
    assert hybrid.user_ids == als.coarse_model.user_ids


def test_top_n_ties_break_by_position(toy) -> None:
    df, index_of = toy
    als = CollaborativeModel.train(df, index_of, 10, factors=4, iterations=5)
    model = HybridModel(als, df, index_of, HybridParams())
    flat = np.zeros(10, dtype=np.float32)
    assert [p for p, _ in model.top_n(flat, 4)] == [0, 1, 2, 3]
