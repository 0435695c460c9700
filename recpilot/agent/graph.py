"""The controller: a LangGraph ``StateGraph`` that reads top to bottom.

    controller → act ─(recommend / refine)─→ understand → plan → [generate] → recall
         │        └─(other tools only)──────────────────────────────┐
         └─(no message: an API call)→ understand …                  │
    … → coarse → [fine] → respond ←─────────────────────────────────┘ → remember

A turn with a message starts at ``controller``: one LLM call (or the rules) chooses the
turn's tools and arguments; ``act`` runs them, and a recommend or refine call runs the
funnel (understand → plan → recall → coarse → fine). A request without a message runs
the funnel directly, with no controller call; a one-off one (no chat thread) runs the
same nodes and edges without the Pregel loop (:mod:`recpilot.agent.direct`). With
``settings.controller = "pipeline"`` the controller steps aside and every turn runs the
earlier fixed workflow.

``understand`` reads the user's long-term profile from the store (when the graph was
compiled with one) and ``remember`` writes what the turn taught about the user back.

``graph`` (compiled without a checkpointer) is what ``langgraph.json`` names, for
standard LangGraph tooling. Programs build their own with :func:`build_graph`, passing
a checkpointer for chat threads, a store for user profiles and ``Services`` as the
runtime context.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Checkpointer

from recpilot.agent.nodes.act import act
from recpilot.agent.nodes.controller import controller
from recpilot.agent.nodes.funnel import coarse, fine, recall
from recpilot.agent.nodes.generate import generate
from recpilot.agent.nodes.plan import plan
from recpilot.agent.nodes.remember import remember
from recpilot.agent.nodes.respond import respond
from recpilot.agent.nodes.understand import understand
from recpilot.agent.services import Services
from recpilot.agent.state import State, scratch_reset
from recpilot.data.catalogue import Constraints
from recpilot.llm.calls import in_node

NODES = {
    "controller": controller,
    "act": act,
    "understand": understand,
    "plan": plan,
    "recall": recall,
    "coarse": coarse,
    "fine": fine,
    "respond": respond,
    "generate": generate,
    "remember": remember,
}


def after_coarse(state: State) -> str:
    """Route to fine ranking only if the plan asks for it and there is something to rank."""
    if state["plan"].fine_mode == "off" or not state.get("candidates"):
        return "respond"
    return "fine"


def at_start(state: State) -> str:
    """A message goes to the controller; a plain request (no message) to the funnel."""
    return "controller" if (state.get("message") or "").strip() else "understand"


def after_controller(state: State) -> str:
    """Run the chosen tools; without any (pipeline mode) go straight to understand."""
    return "act" if state.get("tool_calls") else "understand"


def after_act(state: State) -> str:
    """A recommend/refine call runs the funnel; other tools end at respond."""
    return "understand" if state.get("funnel") is not None else "respond"


def after_plan(state: State) -> str:
    """Route cold-path requests through sample generation when it is switched on."""
    return "generate" if state["plan"].sample_generation else "recall"


FUNNEL_EDGES: dict[str, tuple[Callable[[State], str] | None, list[str]]] = {
    "understand": (None, ["plan"]),
    "plan": (after_plan, ["generate", "recall"]),
    "generate": (None, ["recall"]),
    "recall": (None, ["coarse"]),
    "coarse": (after_coarse, ["fine", "respond"]),
    "fine": (None, ["respond"]),
    "respond": (None, ["remember"]),
    "remember": (None, [END]),
}
"""The funnel's edges, from ``understand`` to the end: node → (router or None, the nodes
it may go to). :func:`build_graph` and :mod:`recpilot.agent.direct` both read it."""


class ReadTracker(dict):
    """The state as a node sees it, remembering which fields the node read."""

    def __init__(self, state: State) -> None:
        super().__init__(state)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:  # noqa: D102 - dict.get
        self.read.add(key)
        return super().get(key, default)


def node(name: str, fn: Callable[[State, Runtime[Services]], dict]) -> Callable:
    """``fn`` as graph node ``name``: its LLM calls are recorded under that name, and its
    stage record lists the state fields it read (the trace's node inputs)."""

    def run(state: State, runtime: Runtime[Services]) -> dict:
        reading = ReadTracker(state)
        with in_node(name):
            update = fn(reading, runtime)  # type: ignore[arg-type]
        for rec in (update or {}).get("stages") or []:
            if rec.get("stage") == name:
                rec["reads"] = sorted(reading.read)
        return update

    run.__name__ = name
    run.__doc__ = fn.__doc__
    return run


def build_graph(checkpointer: Checkpointer = None, store: BaseStore | None = None) -> Any:
    """Compile the controller graph.

    Args:
        checkpointer: a LangGraph checkpointer (e.g. ``SqliteSaver``) for chat threads,
            or None for one-shot requests.
        store: the long-term profile store (``recpilot.stores.profiles.open_store``), or
            None: no profile is read or written.

    Returns:
        The compiled graph; invoke it with ``turn_input(...)`` and
        ``context=Services``.
    """
    builder = StateGraph(State, context_schema=Services)
    for name, fn in NODES.items():
        builder.add_node(name, node(name, fn))
    builder.add_conditional_edges(START, at_start, ["controller", "understand"])
    builder.add_conditional_edges("controller", after_controller, ["act", "understand"])
    builder.add_conditional_edges("act", after_act, ["understand", "respond"])
    for start, (route, ends) in FUNNEL_EDGES.items():
        if route is None:
            builder.add_edge(start, ends[0])
        else:
            builder.add_conditional_edges(start, route, ends)
    return builder.compile(checkpointer=checkpointer, store=store)


def turn_input(
    user_id: str | None,
    message: str | None = None,
    k: int = 10,
    constraints: Constraints | None = None,
    fine_mode: str | None = None,
    channels: list[str] | None = None,
    sample_generation: bool | None = None,
) -> dict:
    """The input of one run: the request plus a reset of every per-turn field.

    Every field of ``TurnScratch`` is reset (:func:`~recpilot.agent.state.scratch_reset`,
    from its annotations); what a follow-up ("more like that") refers to is the thread
    memory's explicit ``previous`` turn.

    ``channels`` fixes the recall channels (used by evaluation to run one channel
    alone); None lets the plan step decide. ``sample_generation`` switches LLM
    pseudo-interactions on the cold path for this run (None: ``settings``).
    """
    return {
        "turn_id": uuid.uuid4().hex,
        "user_id": user_id,
        "message": message,
        "k": k,
        "request_constraints": constraints or Constraints(),
        "fine_mode": fine_mode,
        "channels": channels,
        "sample_generation": sample_generation,
        **scratch_reset(),
    }


graph = build_graph()
