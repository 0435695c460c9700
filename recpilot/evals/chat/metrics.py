"""Conversational metrics: hit@K within T turns, AT, turns-to-hit, cost, CIs, paired tests.

Definitions (an episode stops at the first turn whose list of ``k`` items shows the
target, so "the hit turn" and "the hit rank" are that turn's):

- **hit@K within T** (iEvaLM's Recall@K over a conversation, Wang et al. EMNLP 2023):
  the share of episodes whose target appeared at rank ≤ K in a list of turns 1..T.
  With K = k (the list length) it is InteRecAgent's hit ratio.
- **AT**, average turns (InteRecAgent, Huang et al. 2023, arXiv:2308.16505): the mean
  over episodes of the hit turn, a miss counted as T + 1. Lower is better.
- **turns to first hit**: the distribution of hit turns (1..T, and "miss").
- **hit rate by turn t**: the share of episodes hit by turn t (cumulative; the plot).
- cost per agent turn: latency p50 / p95 (ms, measured around ``Recommender.run``),
  LLM calls and prompt + completion tokens (``TurnResult.llm``).
- **constraint violations**: shown items contradicting what the simulated user stated
  (a wanted category, an excluded one, the decade), per turn; **repeated items**: shown
  items already shown earlier in the episode.

Confidence intervals are percentile bootstraps over episodes (users), paired
comparisons bootstrap the per-user differences between two pipelines on the same
users and setting (:func:`recpilot.evals.metrics.bootstrap_ci`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recpilot.evals.chat.episodes import Episode
from recpilot.evals.metrics import bootstrap_ci


def hits_at(episodes: Sequence[Episode], k: int, turns: int) -> list[float]:
    """Per episode 1.0 when the target was at rank ≤ ``k`` in a turn ≤ ``turns``, else 0.0.

    Args:
        episodes: the episodes.
        k: rank cut-off (>= 1).
        turns: T, the turn budget counted (>= 1).

    Returns:
        One value per episode, in order.
    """
    out = []
    for ep in episodes:
        hit = any(t.rank is not None and t.rank <= k and t.turn <= turns for t in ep.turns)
        out.append(1.0 if hit else 0.0)
    return out


def turns_to_hit(episodes: Sequence[Episode], turns: int) -> list[int]:
    """Per episode the turn of the first hit (≤ ``turns``), or ``turns + 1`` for a miss."""
    out = []
    for ep in episodes:
        first = ep.first_hit
        out.append(first if first is not None and first <= turns else turns + 1)
    return out


def average_turns(episodes: Sequence[Episode], turns: int) -> float:
    """AT: mean of :func:`turns_to_hit` (a miss = T + 1); nan for no episodes."""
    values = turns_to_hit(episodes, turns)
    return float(np.mean(values)) if values else float("nan")


def hit_rate_by_turn(episodes: Sequence[Episode], turns: int) -> list[float]:
    """``[share hit by turn 1, …, by turn T]`` (cumulative)."""
    values = turns_to_hit(episodes, turns)
    n = max(len(values), 1)
    return [sum(1 for v in values if v <= t) / n for t in range(1, turns + 1)]


def turn_distribution(episodes: Sequence[Episode], turns: int) -> dict[str, int]:
    """``{"1": n, …, "T": n, "miss": n}``: how many episodes first hit at each turn."""
    values = turns_to_hit(episodes, turns)
    out = {str(t): sum(1 for v in values if v == t) for t in range(1, turns + 1)}
    out["miss"] = sum(1 for v in values if v > turns)
    return out


def hits_by_kind(episodes: Sequence[Episode]) -> dict[str, dict[str, float]]:
    """Per kind of simulator message (open, category, era, text, history, reject, …): how
    many agent turns answered one, and the share of those turns that showed the target."""
    turns: dict[str, int] = {}
    hits: dict[str, int] = {}
    for ep in episodes:
        for t in ep.turns:
            turns[t.kind] = turns.get(t.kind, 0) + 1
            hits[t.kind] = hits.get(t.kind, 0) + int(t.rank is not None)
    return {k: {"turns": n, "hit_share": round(hits[k] / n, 4)} for k, n in sorted(turns.items())}


def _pct(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile rounded to 0.1, or None for no values."""
    return round(float(np.percentile(values, q)), 1) if values else None


def cost(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Per agent turn: latency p50/p95 (ms), LLM calls and tokens, violations, repeats."""
    turns = [t for ep in episodes for t in ep.turns]
    n = max(len(turns), 1)
    shown = max(sum(len(t.shown) for t in turns), 1)
    return {
        "agent_turns": len(turns),
        "latency_ms_p50": _pct([t.latency_ms for t in turns], 50),
        "latency_ms_p95": _pct([t.latency_ms for t in turns], 95),
        "llm_calls_per_turn": round(sum(t.llm_calls for t in turns) / n, 2),
        "prompt_tokens_per_turn": round(sum(t.prompt_tokens for t in turns) / n, 1),
        "completion_tokens_per_turn": round(sum(t.completion_tokens for t in turns) / n, 1),
        "llm_failed_calls": sum(t.llm_failed for t in turns),
        "turns_with_fallback": sum(1 for t in turns if t.fallbacks),
        "violations_per_turn": round(sum(t.violations for t in turns) / n, 2),
        "violating_item_share": round(sum(t.violations for t in turns) / shown, 4),
        "repeated_items": sum(t.repeated for t in turns),
        "agent_questions": sum(1 for t in turns if t.asked),
        "simulator_hints_dropped": sum(t.dropped for t in turns),
        "simulator_calls": sum(t.sim_calls for t in turns),
        "simulator_ms_p50": _pct([t.sim_ms for t in turns if t.sim_calls], 50),
    }


def summarize(episodes: Sequence[Episode], turns: int, seed: int = 0) -> dict[str, Any]:
    """Every metric of one (pipeline, setting) group (module docstring).

    Args:
        episodes: the group's episodes (one per user).
        turns: T.
        seed: bootstrap seed.

    Returns:
        ``{"episodes", "hit@1", "hit@5", "hit@10", "<each>_ci95", "AT", "AT_ci95",
        "hit_rate_by_turn", "turns_to_first_hit", "cost"}``.
    """
    out: dict[str, Any] = {"episodes": len(episodes)}
    for k in (1, 5, 10):
        values = hits_at(episodes, k, turns)
        out[f"hit@{k}"] = round(float(np.mean(values)), 4) if values else float("nan")
        out[f"hit@{k}_ci95"] = [round(x, 4) for x in bootstrap_ci(values, seed=seed)]
    at = turns_to_hit(episodes, turns)
    out["AT"] = round(average_turns(episodes, turns), 3)
    out["AT_ci95"] = [round(x, 3) for x in bootstrap_ci([float(v) for v in at], seed=seed)]
    out["hit_rate_by_turn"] = [round(x, 4) for x in hit_rate_by_turn(episodes, turns)]
    out["turns_to_first_hit"] = turn_distribution(episodes, turns)
    out["hits_by_message_kind"] = hits_by_kind(episodes)
    out["cost"] = cost(episodes)
    return out


def paired(a: Sequence[Episode], b: Sequence[Episode], turns: int, seed: int = 0) -> dict[str, Any]:
    """Pipeline ``b`` minus pipeline ``a`` on the users both ran (same setting).

    Returns:
        ``{"users", "delta_hit@10", "delta_hit@10_ci95", "delta_AT", "delta_AT_ci95"}``;
        a CI that excludes 0 is a difference the sample can show.
    """
    by_a = {e.user_id: e for e in a}
    common = [e for e in b if e.user_id in by_a]
    ea = [by_a[e.user_id] for e in common]
    d_hit = np.subtract(hits_at(common, 10, turns), hits_at(ea, 10, turns)).tolist()
    d_at = np.subtract(turns_to_hit(common, turns), turns_to_hit(ea, turns)).tolist()
    return {
        "users": len(common),
        "delta_hit@10": round(float(np.mean(d_hit)), 4) if d_hit else float("nan"),
        "delta_hit@10_ci95": [round(x, 4) for x in bootstrap_ci(d_hit, seed=seed)],
        "delta_AT": round(float(np.mean(d_at)), 3) if d_at else float("nan"),
        "delta_AT_ci95": [round(x, 3) for x in bootstrap_ci([float(x) for x in d_at], seed=seed)],
    }


def summarize_run(raw: dict[str, Any]) -> dict[str, Any]:
    """The run's raw results (:func:`~recpilot.evals.chat.episodes.run_chat_eval`) plus
    ``"results"`` (``{setting: {pipeline: summarize(...)}}``) and ``"paired"``
    (``{setting: {"b vs a": paired(...)}}``, every later pipeline against the first)."""
    cfg = raw["config"]
    turns, seed = cfg["turns"], cfg["seed"]
    eps = [Episode.model_validate(e) for e in raw["episodes"]]
    results: dict[str, dict[str, Any]] = {}
    pairs: dict[str, dict[str, Any]] = {}
    for setting in cfg["settings"]:
        groups = {
            p: [e for e in eps if e.setting == setting and e.pipeline == p]
            for p in cfg["pipelines"]
        }
        results[setting] = {p: summarize(g, turns, seed) for p, g in groups.items() if g}
        base = cfg["pipelines"][0]
        pairs[setting] = {
            f"{p} vs {base}": paired(groups[base], groups[p], turns, seed)
            for p in cfg["pipelines"][1:]
            if groups[p] and groups[base]
        }
    return {**raw, "results": results, "paired": pairs}
