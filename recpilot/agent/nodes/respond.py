"""Respond: the top-k of the candidate bus, each with a one-line reason from the catalogue.

Reasons are built from each candidate's provenance — which recall channel found it
(each channel states its own fact) and, for i2i, which liked item it neighbours —
plus its catalogue metadata, so every claim in a reason is checkable against the
catalogue. No LLM call here: the reply is fast and cannot state what the funnel did
not do.
"""

from __future__ import annotations

import time

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from recpilot.agent.nodes.common import record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Candidate, PreviousTurn, RecommendedItem, ShownDetail, State
from recpilot.data.catalogue import Catalogue
from recpilot.funnel.recall import by_explain_order, get_channel


def reason_for(cand: Candidate, catalogue: Catalogue, query: str) -> str:
    """One line saying why ``cand`` is recommended, grounded in its provenance.

    Each recall channel of the candidate contributes its own fact
    (:meth:`~recpilot.funnel.recall.RecallChannel.reason`), in explanation order; a
    channel that ``explains_alone`` (popularity) speaks only when no other one did.
    """
    item = catalogue.get(cand["item_id"])
    sources = cand.get("sources", {})
    facts: list[str] = []
    alone: list[str] = []
    for name in by_explain_order(sources):
        channel = get_channel(name)
        fact = channel.reason(cand, catalogue, query)
        if fact:
            (alone if channel.explains_alone else facts).append(fact)
    if not facts:
        facts = alone[:1]
    if cand.get("fine") is not None:
        facts.append(f"LLM fit {cand['fine']:.2f}")
    meta = ", ".join(item.categories[:3])
    if item.year:
        meta = f"{meta}, {item.year}" if meta else str(item.year)
    line = "; ".join(facts)
    return f"{line[:1].upper()}{line[1:]}" + (f" ({meta})." if meta else ".")


def respond(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: write ``items`` (top k), ``reply`` and the AI message; update ``shown``
    and the thread's ``previous`` turn."""
    started = time.perf_counter()
    svc = services_of(runtime)
    replies = list(state.get("tool_replies") or [])
    if state.get("tool_calls") and state.get("funnel") is None:  # no funnel this turn
        reply = "\n".join(replies) or "OK."
        return {
            "items": [],
            "reply": reply,
            "messages": [AIMessage(reply)],
            "stages": record(state, "respond", started, 0, note="tools only"),
        }
    k = state["intent"].k or state.get("k", 10)
    query = state["intent"].query
    items = []
    for rank, cand in enumerate(state.get("candidates", [])[:k], start=1):
        item = svc.catalogue.get(cand["item_id"])
        items.append(
            RecommendedItem(
                rank=rank,
                item_id=item.item_id,
                title=item.title,
                year=item.year,
                categories=item.categories,
                score=round(float(cand.get("final", cand.get("coarse", 0.0))), 4),
                reason=reason_for(cand, svc.catalogue, query),
                sources=by_explain_order(cand.get("sources", {})),
            )
        )
    if items:
        listing = "; ".join(f"{i.title} ({i.year})" if i.year else i.title for i in items)
        reply = f"Here are {len(items)} picks: {listing}."
    else:
        reply = "No item in the catalogue matches these constraints; try loosening them."
    reply = "\n".join([*replies, reply])
    by_id = {c["item_id"]: c for c in state.get("candidates", [])}
    details = [
        ShownDetail(
            item_id=i.item_id,
            sources=dict(by_id[i.item_id].get("sources", {})),
            seed_item=by_id[i.item_id].get("seed_item"),
            coarse=by_id[i.item_id].get("coarse"),
            fine=by_id[i.item_id].get("fine"),
            final=by_id[i.item_id].get("final"),
            reason=i.reason,
        )
        for i in items
    ]
    plan = state.get("plan")
    previous = PreviousTurn(
        intent=state["intent"],
        item_ids=[i.item_id for i in items],
        details=details,
        channels=list(plan.channels) if plan else [],
    )
    return {
        "items": items,
        "reply": reply,
        "messages": [AIMessage(reply)],
        "shown": [i.item_id for i in items],
        "previous": previous,
        "stages": record(state, "respond", started, len(items)),
    }
