"""The funnel without the graph engine: a one-off request with no message, run node by node.

An orchestrated API call (user id, constraints, k; no message, no chat thread) never
reaches the controller and has no thread to checkpoint: it runs the funnel nodes of
:mod:`recpilot.agent.graph` in a fixed order. :class:`DirectFunnel` runs exactly those
nodes (the same wrapped functions), follows the same edges (``graph.FUNNEL_EDGES``, so
the two cannot drift apart) and applies each node's update with the same reducers (read
from :class:`~recpilot.agent.state.State`'s annotations) — but in a plain loop instead of
LangGraph's Pregel loop, whose per-step bookkeeping (channels, tasks, writes, stream
chunks) measured ~40 % of the CPU of such a request on ML-100K (cProfile, 300 warm
requests: 11.1 s total, 4.5 s in the nodes, ~4.7 s in ``Pregel.stream`` around them).

Its :meth:`DirectFunnel.stream` yields the chunks ``CompiledStateGraph.stream`` yields for
``stream_mode`` ``"updates"`` and ``"values"``, so callers (the runner, the trace
recorder, the evaluation) read both the same way; ``tests/unit/test_direct.py`` checks
that the two give the same final state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Overwrite

from recpilot.agent.graph import FUNNEL_EDGES, NODES, node
from recpilot.agent.services import Services
from recpilot.agent.state import State

FIRST = "understand"


def reducers() -> dict[str, Callable[[Any, Any], Any] | None]:
    """Each :class:`State` field → its reducer (``Annotated[..., reducer]``), or None
    (a write replaces the value), as LangGraph reads them."""
    out: dict[str, Callable[[Any, Any], Any] | None] = {}
    for name, hint in get_type_hints(State, include_extras=True).items():
        fn = None
        if get_origin(hint) is Annotated:
            fn = next((m for m in hint.__metadata__ if callable(m)), None)
        out[name] = fn
    return out


def empty_values() -> dict[str, Any]:
    """Each :class:`State` field with a reducer → the value it starts from: LangGraph
    always has one for such a field, the type's empty value (``[]`` for a list, ``False``
    for a bool, else None)."""
    out: dict[str, Any] = {}
    for name, hint in get_type_hints(State, include_extras=True).items():
        if get_origin(hint) is Annotated and any(callable(m) for m in hint.__metadata__):
            origin = get_origin(get_args(hint)[0]) or get_args(hint)[0]
            out[name] = origin() if origin in (list, bool) else None
    return out


class DirectFunnel:
    """Runs message-less one-off requests through the funnel nodes in a plain loop.

    Args:
        store: the long-term profile store, or None (as for ``build_graph``).
    """

    def __init__(self, store: BaseStore | None = None) -> None:
        self.store = store
        self._nodes = {name: node(name, NODES[name]) for name in FUNNEL_EDGES}
        self._reducers = reducers()
        self._empty = empty_values()

    def apply(self, state: dict[str, Any], update: dict[str, Any] | None) -> dict[str, Any]:
        """A new state: ``state`` with ``update`` written through the fields' reducers.

        Raises:
            ValueError: ``update`` writes a field :class:`State` does not have.
        """
        new = dict(state)
        for key, value in (update or {}).items():
            if key not in self._reducers:
                raise ValueError(f"a node wrote {key!r}, which is not a State field")
            reducer = self._reducers[key]
            if isinstance(value, Overwrite):
                new[key] = value.value
            elif reducer is None:
                new[key] = value
            else:
                new[key] = reducer(new.get(key, self._empty[key]), value)
        return new

    def stream(
        self,
        inputs: dict[str, Any],
        config: dict[str, Any] | None = None,
        *,
        context: Services,
        stream_mode: str | Sequence[str] = "updates",
    ) -> Iterator[Any]:
        """Run one request, yielding what ``graph.stream`` yields for ``stream_mode``
        (called as a compiled graph is, so a caller holds either).

        Args:
            inputs: ``graph.turn_input(...)`` (plus any thread-memory field, such as the
                ``shown`` ids an evaluation hides); its message must be empty.
            config: must name no thread (there is no checkpointer); None or {}.
            context: the runtime services.
            stream_mode: ``"updates"`` ({node: update} per node), ``"values"`` (the
                state after the input and after each node) or a list of both, which
                yields ``(mode, chunk)`` pairs.

        Raises:
            ValueError: the request has a message or the config names a thread (both
                belong to the controller graph).
        """
        if (inputs.get("message") or "").strip() or (config or {}).get("configurable"):
            raise ValueError("a request with a message or a thread runs through the graph")
        modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)
        pairs = not isinstance(stream_mode, str)

        def emit(mode: str, chunk: Any) -> Iterator[Any]:
            if mode in modes:
                yield (mode, chunk) if pairs else chunk

        runtime = Runtime(context=context, store=self.store)
        state = self.apply(self._empty, inputs)
        yield from emit("values", state)
        name = FIRST
        while name != END:
            update = self._nodes[name](state, runtime)  # type: ignore[arg-type]
            state = self.apply(state, update)
            yield from emit("updates", {name: update})
            yield from emit("values", state)
            route, ends = FUNNEL_EDGES[name]
            name = route(state) if route is not None else ends[0]  # type: ignore[arg-type]

    def invoke(self, inputs: dict[str, Any], context: Services) -> dict[str, Any]:
        """Run one request and return the final state (as ``graph.invoke``)."""
        *_, state = self.stream(inputs, context=context, stream_mode="values")
        return state
