"""The funnel's nodes: recall → coarse rank → fine rank, all over the candidate bus.

Each node reads the candidates from state, adds its score per candidate, and records
its duration and output size. Fine ranking is the only place candidates meet the LLM;
whatever it answers is validated by ``fine_rank`` (ids outside the list are dropped
and recorded), and on any failure the coarse order stands.
"""

from __future__ import annotations

import time

import numpy as np
from langgraph.runtime import Runtime

from recpilot.agent.context import TurnContext, turn_context
from recpilot.agent.nodes.common import record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Candidate, Code, State
from recpilot.data.catalogue import Constraints
from recpilot.data.preferences import preference_scores
from recpilot.funnel.coarse_rank import coarse_rank
from recpilot.funnel.fine_rank import fine_rank
from recpilot.funnel.recall import RecallRequest


def recall(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: run the planned recall channels; write ``candidates``."""
    started = time.perf_counter()
    svc = services_of(runtime)
    plan = state["plan"]
    ctx = turn_context(svc, state)
    constraints = state["thread_constraints"]
    preference = preference_scores(svc.catalogue, constraints)
    req = RecallRequest(
        allowed=svc.catalogue.allowed_mask(constraints),
        seen=ctx.seen,
        query=state["intent"].query,
        query_vec=ctx.query_vec,
        liked_ids=ctx.liked_ids,
        user_vec=ctx.recall_state,
        channels=tuple(plan.channels),
        per_channel=plan.per_channel,
        preference=preference,
    )
    merged, counts, failed = svc.recall.run_tolerant(req)
    candidates: list[Candidate] = [c.to_dict() for c in merged.values()]  # type: ignore[misc]
    note = ", ".join(f"{ch}={n}" for ch, n in counts.items()) + f"; merged={len(candidates)}"
    if preference is not None:
        note += f"; {_soft_note(constraints)}"
    codes = [] if candidates else [Code.NO_CANDIDATES]
    out: dict = {}
    if failed:  # e.g. the Chroma server is down: the other channels answered
        codes.append(Code.CHANNEL_FAILED)
        note += "; failed: " + ", ".join(failed)
        out["fallbacks"] = [f"recall: channel {ch} failed ({why})" for ch, why in failed.items()]
    return {
        **out,
        "candidates": candidates,
        "stages": record(
            state, "recall", started, len(candidates), bool(failed), note=note, codes=codes
        ),
    }


def _soft_note(constraints: Constraints) -> str:
    """``soft preferences: +Drama +Thriller -Musical`` for stage notes."""
    signed = [f"+{c}" for c in constraints.prefer_categories]
    signed += [f"-{c}" for c in constraints.disfavor_categories]
    return "soft preferences: " + " ".join(signed)


def coarse(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: score every candidate with the coarse ranker; keep the short list."""
    started = time.perf_counter()
    svc = services_of(runtime)
    ctx = turn_context(svc, state)
    by_id = {c["item_id"]: c for c in state.get("candidates", [])}
    ids = list(by_id)
    sims = None
    if ctx.query_vec is not None and ids:
        positions = np.array([svc.catalogue.index_of[i] for i in ids])
        sims = svc.item_vectors[positions] @ ctx.query_vec
    constraints = state["thread_constraints"]
    preference = preference_scores(svc.catalogue, constraints)
    ranked = coarse_rank(
        ids,
        svc.catalogue,
        svc.coarse_model,
        ctx.coarse_state,
        query_sims=sims,
        keep=state["plan"].coarse_keep,
        preference=(
            preference[[svc.catalogue.index_of[i] for i in ids]] if preference is not None else None
        ),
        preference_weight=svc.settings.preference_weight,
    )
    short: list[Candidate] = []
    for item_id, score in ranked:
        cand = dict(by_id[item_id])
        cand["coarse"] = score
        cand["final"] = score
        short.append(cand)  # type: ignore[arg-type]
    signal = "ALS" if ctx.coarse_state is not None else "popularity"
    note = f"{signal}{' + query similarity' if sims is not None else ''}; kept {len(short)}"
    if preference is not None:
        note += f"; {_soft_note(constraints)} (weight {svc.settings.preference_weight})"
    codes = [Code.SCORED_BY_MODEL if ctx.coarse_state is not None else Code.SCORED_BY_POPULARITY]
    codes += [Code.QUERY_SIMILARITY] if sims is not None else []
    stages = record(state, "coarse", started, len(short), note=note, codes=codes)
    return {"candidates": short, "stages": stages}


def _describe(svc: Services, item_id: str) -> dict:
    item = svc.catalogue.get(item_id)
    return {"item_id": item_id, "title": item.title, "year": item.year,
            "categories": item.categories}  # fmt: skip


def profile_summary(svc: Services, state: State, ctx: TurnContext) -> str:
    """A short profile for the fine-ranking prompt: top categories of liked items, the
    stored interest summary and attributes (long-term memory), the request."""
    parts = []
    if state.get("user_id"):
        parts.append(f"User {state['user_id']}.")
    counts: dict[str, int] = {}
    for item_id in ctx.liked_ids:
        for cat in svc.catalogue.get(item_id).categories:
            counts[cat] = counts.get(cat, 0) + 1
    if counts:
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:4]
        parts.append("Likes mostly: " + ", ".join(c for c, _ in top) + ".")
    profile = state.get("profile")
    if profile and profile.summary:
        parts.append(f"Interests: {profile.summary}")
    if profile and profile.attributes:
        parts.append("About: " + ", ".join(f"{k} {v}" for k, v in profile.attributes.items()) + ".")
    if state["intent"].query:
        parts.append(f"Asks for: {state['intent'].query}.")
    cons = state.get("thread_constraints")
    if cons and not cons.is_empty():
        parts.append("Constraints: " + cons.model_dump_json(exclude_defaults=True) + ".")
    return " ".join(parts) or "A new user; nothing known yet."


def fine(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: LLM fine ranking of the short list (pointwise or listwise), blended."""
    started = time.perf_counter()
    svc = services_of(runtime)
    plan = state["plan"]
    short = state.get("candidates", [])
    if state.get("llm_down") or svc.llm is None:
        return {
            "fallbacks": ["fine: skipped, the LLM was unreachable earlier in this run"],
            "stages": record(
                state, "fine", started, len(short), True, "LLM unreachable", [Code.LLM_SKIPPED]
            ),
        }
    ctx = turn_context(svc, state)
    recent = ctx.history[-svc.settings.history_items :] if svc.settings.history_items else []
    history = [_describe(svc, h["item_id"]) | {"rating": h.get("rating")} for h in recent]
    history += [_describe(svc, i) | {"rating": None} for i in state["intent"].liked_items]
    cands = [_describe(svc, c["item_id"]) | {"coarse_score": c["coarse"]} for c in short]
    result = fine_rank(
        svc.llm,
        profile_summary(svc, state, ctx),
        history,
        cands,
        mode=plan.fine_mode,
        weight=svc.settings.fine_weight,
        prompt_token_budget=svc.settings.fine_prompt_tokens,
        top_n=svc.settings.fine_top_n,
        max_llm_items=svc.settings.fine_max_llm_items,
    )
    by_id = {c["item_id"]: c for c in short}
    ranked: list[Candidate] = []
    for item_id in result.order:
        cand = dict(by_id[item_id])
        cand["fine"] = result.llm_scores.get(item_id)
        cand["final"] = result.scores.get(item_id, cand["coarse"])
        ranked.append(cand)  # type: ignore[arg-type]
    fallbacks: list[str] = []
    codes: list[Code] = []
    note = f"{plan.fine_mode}, weight {svc.settings.fine_weight}"
    if result.fell_back:
        fallbacks.append(f"fine: {result.fallback_reason}; kept the coarse order")
        note += f"; fell back: {result.fallback_reason}"
        codes.append(Code.LLM_FAILED)
        codes += [Code.LLM_UNREACHABLE] if result.llm_unreachable else []
    if result.dropped_ids:
        note += f"; dropped invalid ids: {', '.join(result.dropped_ids)}"
        codes.append(Code.INVALID_IDS_DROPPED)
    return {
        "candidates": ranked,
        "fallbacks": fallbacks,
        "dropped_ids": list(result.dropped_ids),
        "llm_down": result.llm_unreachable,
        "stages": record(state, "fine", started, len(ranked), result.fell_back, note, codes),
    }
