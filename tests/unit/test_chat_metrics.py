"""Conversational metrics on hand-made episodes: hit@K within T, AT, turns, CIs, pairs."""

from __future__ import annotations

import math

import pytest

from recpilot.evals.chat.episodes import Episode, TurnRecord, _violations
from recpilot.evals.chat.metrics import (
    average_turns,
    hit_rate_by_turn,
    hits_at,
    paired,
    summarize,
    turn_distribution,
    turns_to_hit,
)
from recpilot.evals.chat.simulator import Shown, Stated


def episode(user: str, ranks: list[int | None], pipeline: str = "rules") -> Episode:
    """An episode whose turn t showed the target at ``ranks[t-1]`` (None = not shown)."""
    turns = [
        TurnRecord(turn=t, message="m", kind="open", shown=[], rank=r, latency_ms=10.0 * t,
                   llm_calls=1, prompt_tokens=100, completion_tokens=10)
        for t, r in enumerate(ranks, start=1)
    ]  # fmt: skip
    return Episode(pipeline=pipeline, setting="known", user_id=user, target="x", seed=0,
                   turns=turns)  # fmt: skip


@pytest.fixture
def eps() -> list[Episode]:
    return [
        episode("a", [1]),  # hit at turn 1, rank 1
        episode("b", [None, None, 7]),  # hit at turn 3, rank 7
        episode("c", [None, 3]),  # hit at turn 2, rank 3
        episode("d", [None] * 5),  # miss
    ]


def test_hit_at_k_within_t_turns(eps: list[Episode]) -> None:
    assert hits_at(eps, 1, 5) == [1.0, 0.0, 0.0, 0.0]
    assert hits_at(eps, 5, 5) == [1.0, 0.0, 1.0, 0.0]
    assert hits_at(eps, 10, 5) == [1.0, 1.0, 1.0, 0.0]
    assert hits_at(eps, 10, 2) == [1.0, 0.0, 1.0, 0.0]  # turn 3's hit is beyond T = 2


def test_average_turns_counts_a_miss_as_t_plus_one(eps: list[Episode]) -> None:
    assert turns_to_hit(eps, 5) == [1, 3, 2, 6]
    assert average_turns(eps, 5) == pytest.approx((1 + 3 + 2 + 6) / 4)
    assert turns_to_hit(eps, 2) == [1, 3, 2, 3]  # with T = 2, b's late hit is a miss
    assert math.isnan(average_turns([], 5))


def test_turn_distribution_and_hit_rate_by_turn(eps: list[Episode]) -> None:
    assert turn_distribution(eps, 5) == {"1": 1, "2": 1, "3": 1, "4": 0, "5": 0, "miss": 1}
    assert hit_rate_by_turn(eps, 5) == [0.25, 0.5, 0.75, 0.75, 0.75]


def test_summary_has_cis_that_contain_the_mean_and_per_turn_cost(eps: list[Episode]) -> None:
    m = summarize(eps, 5, seed=0)
    assert m["hit@10"] == 0.75 and m["hit@1"] == 0.25 and m["AT"] == 3.0
    low, high = m["hit@10_ci95"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0
    low, high = m["AT_ci95"]
    assert 1.0 <= low <= 3.0 <= high <= 6.0
    assert m["cost"]["agent_turns"] == 1 + 3 + 2 + 5
    assert m["cost"]["llm_calls_per_turn"] == 1.0
    assert m["cost"]["completion_tokens_per_turn"] == 10.0
    assert m["cost"]["latency_ms_p50"] == 20.0
    assert summarize(eps, 5, seed=0) == m  # seeded bootstrap


def test_paired_difference_on_common_users(eps: list[Episode]) -> None:
    better = [episode(e.user_id, [1], "llm") for e in eps] + [episode("zz", [1], "llm")]
    d = paired(eps, better, 5, seed=0)
    assert d["users"] == 4  # "zz" has no rules episode
    assert d["delta_hit@10"] == 0.25
    assert d["delta_AT"] == pytest.approx(((1 - 1) + (1 - 3) + (1 - 2) + (1 - 6)) / 4)
    assert d["delta_AT_ci95"][1] <= 0.0  # every user improved or tied


def test_violations_count_items_against_what_the_user_stated() -> None:
    items = [
        Shown(item_id="1", title="A", year=1994, categories=["Comedy"]),
        Shown(item_id="2", title="B", year=1985, categories=["Comedy"]),  # wrong decade
        Shown(item_id="3", title="C", year=1996, categories=["Horror"]),  # not comedy, excluded
        Shown(item_id="4", title="D", year=None, categories=["Comedy", "Drama"]),  # no year
    ]
    stated = [Stated(include=["Comedy"]), Stated(decade=1990), Stated(exclude=["Horror"])]
    assert _violations(items, stated) == 3
    assert _violations(items, [Stated(include=["Comedy"])]) == 1
    assert _violations(items, []) == 0


def test_hit_share_by_message_kind(eps: list[Episode]) -> None:
    from recpilot.evals.chat.metrics import hits_by_kind

    got = hits_by_kind(eps)
    assert got == {"open": {"turns": 11, "hit_share": round(3 / 11, 4)}}
