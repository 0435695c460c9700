"""Metric functions: hand-computed cases and agreement with ranx on the same inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from recpilot.evals.metrics import (
    bootstrap_ci,
    candidate_hit_rate,
    hit_rate_at_k,
    item_coverage,
    mrr,
    ndcg_at_k,
    rank_of,
    summarize,
)


def test_rank_of() -> None:
    assert rank_of(["a", "b", "c"], "a") == 1
    assert rank_of(["a", "b", "c"], "c") == 3
    assert rank_of(["a", "b"], "z") is None
    assert rank_of([], "z") is None


def test_hand_computed_case() -> None:
    ranks = [1, 3, None, 11]
    assert hit_rate_at_k(ranks, 10) == pytest.approx(0.5)
    assert hit_rate_at_k(ranks, 1) == pytest.approx(0.25)
    # (1/log2(2) + 1/log2(4)) / 4 = (1 + 0.5) / 4
    assert ndcg_at_k(ranks, 10) == pytest.approx(0.375)
    assert ndcg_at_k(ranks, 20) == pytest.approx((1 + 0.5 + 1 / math.log2(12)) / 4)
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 1 / 11) / 4)
    assert mrr(ranks, k=5) == pytest.approx((1 + 1 / 3) / 4)


def test_empty_inputs_give_zero() -> None:
    assert hit_rate_at_k([], 10) == 0.0
    assert ndcg_at_k([], 10) == 0.0
    assert mrr([]) == 0.0
    assert candidate_hit_rate([], []) == 0.0


def test_coverage_and_candidate_hit_rate() -> None:
    lists = [["a", "b", "c"], ["b", "d"], []]
    assert item_coverage(lists, 1, 4) == pytest.approx(2 / 4)  # {a, b}
    assert item_coverage(lists, 3, 8) == pytest.approx(4 / 8)  # {a, b, c, d}
    assert candidate_hit_rate([["a", "b"], ["c"], []], ["b", "z", "q"]) == pytest.approx(1 / 3)


def test_summarize_keys() -> None:
    out = summarize([1, None], ks=(5, 10), lists=[["a"], ["b"]], n_items=4)
    assert out["HR@5"] == 0.5 and out["users"] == 2
    assert out["coverage@10"] == pytest.approx(0.5)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean() -> None:
    values = np.random.default_rng(0).random(200)
    low, high = bootstrap_ci(values, seed=1)
    assert (low, high) == bootstrap_ci(values, seed=1)
    assert low < values.mean() < high


def _random_case(seed: int, n_users: int = 60, n_items: int = 50, length: int = 20):
    rng = np.random.default_rng(seed)
    lists, targets = [], []
    for u in range(n_users):
        size = 0 if u == 0 else length  # one user with an empty list
        lists.append([f"i{j}" for j in rng.permutation(n_items)[:size]])
        targets.append(f"i{int(rng.integers(n_items))}")
    return lists, targets


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_ranx(seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ranx import Qrels, Run, evaluate

    lists, targets = _random_case(seed)
    ranks = [rank_of(lst, t) for lst, t in zip(lists, targets, strict=True)]
    assert any(r is not None for r in ranks) and any(r is None for r in ranks)
    qrels = Qrels.from_dict({f"u{u}": {t: 1} for u, t in enumerate(targets)})
    run = Run.from_dict(
        {f"u{u}": {item: float(len(lst) - r) for r, item in enumerate(lst)}
         for u, lst in enumerate(lists)}
    )  # fmt: skip
    names = [f"{m}@{k}" for m in ("hit_rate", "recall", "ndcg") for k in (5, 10, 20)] + ["mrr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = evaluate(qrels, run, names, make_comparable=True)
    for k in (5, 10, 20):
        assert hit_rate_at_k(ranks, k) == pytest.approx(ref[f"hit_rate@{k}"])
        assert hit_rate_at_k(ranks, k) == pytest.approx(ref[f"recall@{k}"])
        assert ndcg_at_k(ranks, k) == pytest.approx(ref[f"ndcg@{k}"])
    assert mrr(ranks) == pytest.approx(ref["mrr"])
