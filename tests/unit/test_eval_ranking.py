"""Vectorised full ranking, offline re-blending of fine scores, and the LLM-run cache."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from fakes import fake_llm, yes_message

from recpilot.evals.pipelines import reblend
from recpilot.evals.tuning import RankCounter, full_ranks
from recpilot.funnel.fine_rank import fine_rank


def test_full_ranks_excludes_seen_and_outside_items() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    allowed = np.array([True, True, True, False])
    ranks = full_ranks(scores, seen, allowed, np.array([2, 0]))
    # user 0: item 0 seen, item 1 above → rank 2; user 1: items 1, 2 above (3 outside) → 3
    assert ranks.tolist() == [2, 3]
    # ties count against the target: constant scores give the worst rank, not rank 1
    flat = full_ranks(np.zeros((1, 4)), sp.csr_matrix((1, 4)), allowed, np.array([1]))
    assert flat.tolist() == [3]


def _ranks_by_masking(scores, seen, allowed, targets):  # the formula before RankCounter
    s = np.where(allowed[None, :], scores, -np.inf)
    rows, cols = seen.nonzero()
    s[rows, cols] = -np.inf
    idx = np.arange(len(targets))
    target = s[idx, targets].copy()
    s[idx, targets] = -np.inf
    return (s >= target[:, None]).sum(axis=1) + 1


def test_rank_counter_equals_masking_with_ties_inf_and_excluded_targets() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 50
    seen = sp.csr_matrix(rng.random((n_users, n_items)) < 0.2)
    allowed = rng.random(n_items) < 0.8
    targets = rng.integers(0, n_items, n_users)  # some seen or outside: target is -inf
    counter = RankCounter(seen, allowed, targets)
    for _ in range(20):
        scores = np.round(rng.normal(size=(n_users, n_items)), 1)  # many ties
        scores[rng.random((n_users, n_items)) < 0.05] = -np.inf
        scores[rng.random((n_users, n_items)) < 0.02] = np.nan
        expected = _ranks_by_masking(scores, seen, allowed, targets)
        assert counter.ranks(scores).tolist() == expected.tolist()
        assert full_ranks(scores, seen, allowed, targets).tolist() == expected.tolist()


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_reblend_reproduces_fine_rank(weight: float) -> None:
    p_yes = [0.2, 0.9, 0.5, 0.6, 0.1]
    cands = [
        {"item_id": f"c{i}", "title": f"T{i}", "year": None, "categories": [],
         "coarse_score": 1.0 - 0.1 * i}
        for i in range(5)
    ]  # fmt: skip
    client = fake_llm(*[yes_message(p) for p in p_yes])
    result = fine_rank(client, "x", [], cands, "pointwise", weight, 4000)
    short = [
        {"item_id": c["item_id"], "coarse": c["coarse_score"],
         "fine": result.llm_scores.get(c["item_id"])}
        for c in cands
    ]  # fmt: skip
    coarse_order = [c["item_id"] for c in cands]
    assert reblend(short, coarse_order, weight) == result.order
    assert reblend([{**c, "fine": None} for c in short], coarse_order, weight) == coarse_order


def test_run_cache_resumes_only_the_same_configuration(tmp_path) -> None:
    from recpilot.evals.harness import RunCache
    from recpilot.evals.pipelines import RunRecord

    path = tmp_path / "llm_runs.jsonl"
    rec = RunRecord(ranked=["a", "b"], candidates=["a", "b", "c"], llm_calls=3, wall_ms=12.5)
    key = ("test phase", "full", "fine:listwise", "u1")
    RunCache(path, "cfg-1", resume=False).put(key, "b", rec, ["a", "b"])
    with path.open("a") as fh:
        fh.write('{"key": ["cut by a kill"')  # a half-written last line is skipped
    again = RunCache(path, "cfg-1", resume=True).get(key)
    assert again is not None
    target, record, ranked = again
    assert (target, ranked, record.llm_calls, record.candidates) == (
        "b",
        ["a", "b"],
        3,
        rec.candidates,
    )
    assert RunCache(path, "cfg-2", resume=True).get(key) is None  # other configuration
    with pytest.raises(ValueError, match="--resume"):  # saved runs are never deleted unasked
        RunCache(path, "cfg-1", resume=False)
    assert RunCache(path, "cfg-1", resume=True).get(key) is not None
