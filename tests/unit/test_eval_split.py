"""Leave-one-out split, k-core filter, cold-start truncation and negative sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recpilot.evals.split import (
    kcore_filter,
    leave_one_out,
    sample_negatives,
    sample_users,
    tie_keys,
    timestamp_kind,
    truncate_histories,
)


def frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"user_id": u, "item_id": i, "rating": 4.0, "timestamp": t} for u, i, t in rows]
    )


@pytest.fixture
def interactions() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for u in range(30):
        items = rng.choice(40, size=int(rng.integers(5, 15)), replace=False)
        times = np.sort(rng.integers(0, 50, size=len(items)))  # many equal timestamps
        rows += [(f"u{u}", str(i + 1), int(t)) for i, t in zip(items, times, strict=True)]
    return frame(rows)


def test_last_interaction_is_test_and_second_last_is_validation() -> None:
    df = frame(
        [("a", "5", 10), ("a", "3", 30), ("a", "7", 20), ("a", "1", 5),
         ("b", "1", 1), ("b", "3", 2), ("b", "5", 3), ("b", "7", 4)]
    )  # fmt: skip
    split = leave_one_out(df, min_user=3, min_item=1)
    assert split.targets("test") == {"a": "3", "b": "7"}
    assert split.targets("valid") == {"a": "7", "b": "5"}
    valid_train = split.train_frame("valid")
    assert sorted(valid_train[valid_train.user_id == "a"].item_id) == ["1", "5"]


def test_timestamp_ties_are_broken_by_the_seeded_key_not_the_item_id() -> None:
    # items 9 and 10 share the last timestamp: the seeded key, not the id, picks the test item
    df = frame([("a", "1", 1), ("a", "10", 5), ("a", "9", 5), ("a", "2", 1)])
    for seed in range(6):
        split = leave_one_out(df, min_user=3, min_item=1, seed=seed)
        keys = dict(zip(["10", "9"], tie_keys(pd.Series(["a", "a"]), pd.Series(["10", "9"]), seed),
                        strict=True))  # fmt: skip
        winner = max(keys, key=keys.__getitem__)
        assert split.targets("test") == {"a": winner}
        assert split.targets("valid") == {"a": "10" if winner == "9" else "9"}
        assert split.ties == 1.0 and split.ties_with_train == 0.0  # 2 items tied, not 3
        assert split.order == "time" and "seeded random key" in split.tie_rule


def test_tie_break_is_seeded_and_unbiased_towards_high_ids() -> None:
    # 400 users each rate a low-id and a high-id item in the same last second
    rows = []
    for u in range(400):
        rows += [(f"u{u}", "1", 1), (f"u{u}", "2", 2), (f"u{u}", "50", 9), (f"u{u}", "900", 9)]
    df = frame(rows)
    a = leave_one_out(df, min_user=3, min_item=1, seed=3)
    b = leave_one_out(df.sample(frac=1.0, random_state=1), min_user=3, min_item=1, seed=3)
    assert a.targets("test") == b.targets("test")  # same seed → same split, any row order
    high = sum(t == "900" for t in a.targets("test").values()) / 400
    assert 0.4 < high < 0.6  # the id rule gave 1.0
    other = leave_one_out(df, min_user=3, min_item=1, seed=4)
    assert other.targets("test") != a.targets("test")


def test_row_order_timestamps_get_a_seeded_random_hold_out_not_time() -> None:
    # what `recpilot data ingest` writes for a file without timestamps (0..n-1), with each
    # user's items listed by ascending id: by "time" the test item is always the highest id
    rows, t = [], 0
    for u in range(200):
        for item in sorted(np.random.default_rng(u).choice(60, 8, replace=False)):
            rows.append((f"u{u}", str(item + 1), t))
            t += 1
    df = frame(rows)
    assert timestamp_kind(df["timestamp"]) == "row-order"
    split = leave_one_out(df, min_user=3, min_item=1)
    assert split.order == "random" and split.timestamps == "row-order"
    assert "random hold-out" in split.order_note and "--split time" in split.order_note
    highest = df.groupby("user_id")["item_id"].apply(lambda s: max(s, key=int)).to_dict()
    same = sum(highest[u] == i for u, i in split.targets("test").items()) / len(split.users)
    assert same < 0.3  # about 1/8 by chance
    forced = leave_one_out(df, min_user=3, min_item=1, order="time")
    assert forced.order == "time" and "requested with --split time" in forced.order_note
    assert forced.targets("test") == {u: highest[u] for u in forced.users}


def test_constant_timestamps_are_not_time_and_real_ones_are() -> None:
    const = frame([(f"u{u}", str(i), 7) for u in range(5) for i in range(1, 6)])
    assert timestamp_kind(const["timestamp"]) == "constant"
    split = leave_one_out(const, min_user=3, min_item=1)
    assert split.order == "random" and "same timestamp" in split.order_note
    real = frame([(f"u{u}", str(i), 880_000_000 + 60 * (u * 5 + i)) for u in range(5)
                  for i in range(1, 6)])  # fmt: skip
    assert timestamp_kind(real["timestamp"]) == "real"
    assert leave_one_out(real, min_user=3, min_item=1).order == "time"
    with pytest.raises(ValueError, match="unknown split order"):
        leave_one_out(real, min_user=3, min_item=1, order="file")  # type: ignore[arg-type]


def test_no_leakage_of_held_out_items(interactions: pd.DataFrame) -> None:
    split = leave_one_out(interactions, min_user=3, min_item=1)
    test_t, valid_t = split.targets("test"), split.targets("valid")
    assert set(test_t) == set(valid_t) == set(split.users)
    valid_train = split.train_frame("valid")
    test_train = split.train_frame("test")
    for phase_train, forbidden in ((valid_train, [test_t, valid_t]), (test_train, [test_t])):
        pairs = set(zip(phase_train.user_id, phase_train.item_id, strict=True))
        for targets in forbidden:
            assert not any((u, i) in pairs for u, i in targets.items())
    # the test phase does see the validation item, as LlamaRec's test loader does
    test_pairs = set(zip(test_train.user_id, test_train.item_id, strict=True))
    assert all((u, i) in test_pairs for u, i in valid_t.items())
    assert len(test_train) == len(valid_train) + len(valid_t)


def test_duplicates_keep_the_first_interaction() -> None:
    df = frame([("a", "1", 1), ("a", "2", 2), ("a", "1", 9), ("a", "3", 3), ("a", "4", 4)])
    split = leave_one_out(df, min_user=3, min_item=1)
    assert split.targets("test") == {"a": "4"}
    assert len(split.interactions) == 4


def test_kcore_filter_is_iterative() -> None:
    # item "x" has 2 users; dropping user "c" (too short) leaves "x" with 1 → dropped too,
    # which then makes user "b" too short.
    df = frame(
        [("a", "x", 1), ("a", "y", 2), ("a", "z", 3),
         ("b", "x", 1), ("b", "y", 2), ("b", "z", 3),
         ("c", "x", 1),
         ("d", "y", 1), ("d", "z", 2), ("d", "w", 3), ("e", "w", 1), ("e", "y", 2),
         ("e", "z", 3)]
    )  # fmt: skip
    out = kcore_filter(df, min_user=3, min_item=2)
    assert (out.groupby("user_id").size() >= 3).all()
    assert (out.groupby("item_id").size() >= 2).all()
    assert "c" not in set(out.user_id)


def test_split_rejects_too_small_min_user(interactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="min_user"):
        leave_one_out(interactions, min_user=2)


def test_truncate_keeps_the_first_interactions_of_chosen_users(
    interactions: pd.DataFrame,
) -> None:
    split = leave_one_out(interactions, min_user=5, min_item=1)
    train = split.train_frame("test")
    chosen = split.users[:3]
    cut = truncate_histories(train, chosen, 2)
    for u in chosen:
        kept = cut[cut.user_id == u]
        assert kept.item_id.tolist() == train[train.user_id == u].item_id.tolist()[:2]
    others = train[~train.user_id.isin(chosen)]
    assert len(cut[~cut.user_id.isin(chosen)]) == len(others)


def test_negatives_exclude_user_items_and_are_seeded(interactions: pd.DataFrame) -> None:
    split = leave_one_out(interactions, min_user=3, min_item=1)
    pop = split.train_frame("test").item_id.value_counts().to_dict()
    user = split.users[0]
    mine = split.user_items(user)
    for method in ("uniform", "popularity"):
        a = sample_negatives(split.universe, mine, 10, method, 0, user, pop)
        b = sample_negatives(split.universe, mine, 10, method, 0, user, pop)
        c = sample_negatives(split.universe, mine, 10, method, 1, user, pop)
        assert a == b
        assert a != c
        assert len(a) == len(set(a)) == 10
        assert not set(a) & mine
        assert set(a) <= set(split.universe)


def test_popularity_sampling_prefers_popular_items() -> None:
    universe = [str(i) for i in range(100)]
    pop = {str(i): float(1000 if i < 10 else 1) for i in range(100)}
    drawn = []
    for u in range(50):
        drawn += sample_negatives(universe, set(), 10, "popularity", 0, f"u{u}", pop)
    share_popular = np.mean([int(i) < 10 for i in drawn])
    assert share_popular > 0.5  # 10 % of the items, ~92 % of the probability mass


def test_negatives_when_the_pool_is_small() -> None:
    out = sample_negatives(["1", "2", "3"], {"2"}, 10, "uniform", 0, "u")
    assert sorted(out) == ["1", "3"]


def test_sample_users_is_seeded_and_sorted() -> None:
    users = [f"u{i:02d}" for i in range(40)]
    a = sample_users(users, 10, seed=3)
    assert a == sample_users(users, 10, seed=3)
    assert a == sorted(a) and len(a) == 10
    assert sample_users(users, None, seed=3) == users


def test_tie_share_with_training_items_counts_groups_of_three() -> None:
    df = frame([("a", "1", 1), ("a", "2", 5), ("a", "3", 5), ("a", "4", 5),
                ("b", "1", 1), ("b", "2", 2), ("b", "3", 3), ("b", "4", 3)])  # fmt: skip
    split = leave_one_out(df, min_user=3, min_item=1)
    assert split.ties == 1.0  # both users: test and validation in the same second
    assert split.ties_with_train == 0.5  # only user a: a training item in that second too
