"""Respond: the top-k of the candidate bus, each with a one-line reason from the catalogue.

Reasons are built from each candidate's provenance — which recall channel found it
and, for i2i, which liked item it neighbours — plus its catalogue metadata, so every
claim in a reason is checkable against the catalogue. No LLM call here: the reply is
fast and cannot state what the funnel did not do.
"""

from __future__ import annotations

import time

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from recpilot.agent.nodes.common import record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Candidate, RecommendedItem, State
from recpilot.tools.catalogue import Catalogue

CHANNEL_ORDER = ("i2i", "semantic", "collaborative", "popularity")


def reason_for(cand: Candidate, catalogue: Catalogue, query: str) -> str:
    """One line saying why ``cand`` is recommended, grounded in its provenance."""
    item = catalogue.get(cand["item_id"])
    sources = cand.get("sources", {})
    facts = []
    if "i2i" in sources and cand.get("seed_item"):
        seed = catalogue.get(cand["seed_item"])
        facts.append(f"similar to {seed.title}, which you liked")
    if "semantic" in sources and query:
        facts.append(f"matches “{query[:60]}”")
    if "collaborative" in sources:
        facts.append("rated highly by people with tastes like yours")
    if not facts and "popularity" in sources:
        count = int(catalogue.popularity[catalogue.index_of[item.item_id]])
        facts.append(f"popular: {count} ratings")
    if cand.get("fine") is not None:
        facts.append(f"LLM fit {cand['fine']:.2f}")
    meta = ", ".join(item.categories[:3])
    if item.year:
        meta = f"{meta}, {item.year}" if meta else str(item.year)
    line = "; ".join(facts)
    return f"{line[:1].upper()}{line[1:]} ({meta})."


def respond(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: write ``items`` (top k), ``reply`` and the AI message; update ``shown``."""
    started = time.perf_counter()
    svc = services_of(runtime)
    k = state.get("k", 10)
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
                sources=[s for s in CHANNEL_ORDER if s in cand.get("sources", {})],
            )
        )
    if items:
        listing = "; ".join(f"{i.title} ({i.year})" if i.year else i.title for i in items)
        reply = f"Here are {len(items)} picks: {listing}."
    else:
        reply = "No item in the catalogue matches these constraints; try loosening them."
    return {
        "items": items,
        "reply": reply,
        "messages": [AIMessage(reply)],
        "shown": [i.item_id for i in items],
        "stages": record(state, "respond", started, len(items)),
    }
