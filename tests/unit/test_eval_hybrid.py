"""The hybrid coarse prototype, vectorised full ranking, and offline re-blending."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from recpilot.agent.llm import LLMClient
from recpilot.evals.hybrid import DAY_S, HybridModel, HybridParams, covisitation
from recpilot.evals.pipelines import reblend
from recpilot.evals.tuning import full_ranks
from recpilot.tools.collaborative import CollaborativeModel
from recpilot.tools.fine_rank import fine_rank


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
    model = HybridModel(als, df, index_of, HybridParams(als_weight=0.0, pop_weight=0.0))
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


def _yes(p: float) -> AIMessage:
    top = [
        {"token": "Yes", "logprob": math.log(p), "bytes": None},
        {"token": "No", "logprob": math.log(1 - p), "bytes": None},
    ]
    content = [{"token": "Yes", "logprob": top[0]["logprob"], "top_logprobs": top}]
    return AIMessage(content="Yes", response_metadata={"logprobs": {"content": content}})


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_reblend_reproduces_fine_rank(weight: float) -> None:
    p_yes = [0.2, 0.9, 0.5, 0.6, 0.1]
    cands = [
        {"item_id": f"c{i}", "title": f"T{i}", "year": None, "categories": [],
         "coarse_score": 1.0 - 0.1 * i}
        for i in range(5)
    ]  # fmt: skip
    client = LLMClient(
        GenericFakeChatModel(messages=iter([_yes(p) for p in p_yes])), retries=0, retry_wait_s=0
    )
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
    assert RunCache(path, "cfg-1", resume=False).get(key) is None and not path.exists()
