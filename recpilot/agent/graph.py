"""The controller: a LangGraph ``StateGraph`` that reads top to bottom.

    understand → plan → recall → coarse → fine → respond
                                    └── (plan.fine_mode == "off" or no candidates) ──┘

``graph`` (compiled without a checkpointer) is what ``langgraph.json`` names, for
standard LangGraph tooling. Programs build their own with :func:`build_graph`, passing
a checkpointer for chat threads and ``Services`` as the runtime context.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer

from recpilot.agent.nodes.funnel import coarse, fine, recall
from recpilot.agent.nodes.plan import plan
from recpilot.agent.nodes.respond import respond
from recpilot.agent.nodes.understand import understand
from recpilot.agent.services import Services
from recpilot.agent.state import State
from recpilot.tools.catalogue import Constraints


def after_coarse(state: State) -> str:
    """Route to fine ranking only if the plan asks for it and there is something to rank."""
    if state["plan"].fine_mode == "off" or not state.get("candidates"):
        return "respond"
    return "fine"


def build_graph(checkpointer: Checkpointer = None) -> Any:
    """Compile the controller graph.

    Args:
        checkpointer: a LangGraph checkpointer (e.g. ``SqliteSaver``) for chat threads,
            or None for one-shot requests.

    Returns:
        The compiled graph; invoke it with ``turn_input(...)`` and
        ``context=Services``.
    """
    builder = StateGraph(State, context_schema=Services)
    builder.add_node("understand", understand)
    builder.add_node("plan", plan)
    builder.add_node("recall", recall)
    builder.add_node("coarse", coarse)
    builder.add_node("fine", fine)
    builder.add_node("respond", respond)
    builder.add_edge(START, "understand")
    builder.add_edge("understand", "plan")
    builder.add_edge("plan", "recall")
    builder.add_edge("recall", "coarse")
    builder.add_conditional_edges("coarse", after_coarse, ["fine", "respond"])
    builder.add_edge("fine", "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=checkpointer)


def turn_input(
    user_id: str | None,
    message: str | None = None,
    k: int = 10,
    constraints: Constraints | None = None,
    fine_mode: str | None = None,
    channels: list[str] | None = None,
) -> dict:
    """The input of one run: the request plus a reset of every per-turn field.

    ``intent`` and ``items`` are not reset: until ``understand`` and ``respond``
    overwrite them they hold the previous turn's, which a follow-up ("more like
    that") refers to.

    ``channels`` fixes the recall channels (used by evaluation to run one channel
    alone); None lets the plan step decide.
    """
    return {
        "user_id": user_id,
        "message": message,
        "k": k,
        "request_constraints": constraints or Constraints(),
        "fine_mode": fine_mode,
        "channels": channels,
        "candidates": [],
        "stages": [],
        "fallbacks": [],
        "dropped_ids": [],
        "llm_down": False,
    }


graph = build_graph()
