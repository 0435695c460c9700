"""Record one run of the controller graph as a :class:`RunTrace`.

The runner streams the graph with ``stream_mode=["updates", "values"]`` and hands each
chunk to a :class:`TraceRecorder`: "values" chunks keep the state *before* the next node
(its inputs), "updates" chunks are what a node wrote (its outputs). Because the graph runs
its nodes one after another, the LLM calls made since the previous node finished belong to
the node that just finished. LLM calls come from the run's
:class:`~recpilot.llm.calls.CallLog`, where each call carries the node that made it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from recpilot.llm.calls import CallLog
from recpilot.llm.client import LLMCall

MAX_CANDIDATES = 500  # candidates kept per stage in a trace (recall can return more)

# Not summarised as a node's inputs or outputs (bookkeeping, or the whole conversation).
SKIP_OUTPUTS = {"stages", "messages", "llm_down", "turn_id"}


class CandidateScore(BaseModel):
    """One candidate after a stage: id, recall channels, and the scores known so far."""

    item_id: str
    sources: list[str] = Field(default_factory=list)
    coarse: float | None = None
    fine: float | None = None
    final: float | None = None


class NodeTrace(BaseModel):
    """What one node did.

    Attributes:
        node: node name (``understand``, ``plan``, ``recall``, ``coarse``, ``fine``,
            ``respond``).
        start_ms, end_ms: offsets from the run's start, milliseconds.
        ms: the node's own measured duration, milliseconds.
        inputs, outputs: summaries of the state fields it read (as its stage record's
            ``reads`` lists them) and wrote.
        candidates: the candidate bus after the node (None when the node left it alone).
        llm_calls: every LLM call the node made (prompt, response, tokens, latency, retries).
        fell_back: the node used its non-LLM fallback.
        codes: the stage record's structured reason codes (``agent.state.Code``).
        note: the node's own one-line note.
    """

    node: str
    start_ms: float
    end_ms: float
    ms: float
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    candidates: list[CandidateScore] | None = None
    llm_calls: list[LLMCall] = Field(default_factory=list)
    fell_back: bool = False
    codes: list[str] = Field(default_factory=list)
    note: str = ""


class RunTrace(BaseModel):
    """One run of the graph, as stored in ``home/traces.sqlite``.

    Attributes:
        run_id: unique id (``run-`` + 12 hex digits).
        started_at: UTC start time, ISO 8601.
        total_ms: wall-clock of the whole run, milliseconds.
        items: the returned items (id, title, score), best first.
        error: ``"Type: message"`` when the run raised, else None.
    """

    run_id: str
    thread_id: str | None = None
    user_id: str | None = None
    message: str | None = None
    k: int = 10
    started_at: str
    total_ms: float = 0.0
    nodes: list[NodeTrace] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    dropped_ids: list[str] = Field(default_factory=list)
    items: list[dict[str, Any]] = Field(default_factory=list)
    reply: str = ""
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


def new_run_id() -> str:
    """A fresh run id, ``run-`` + 12 hex digits."""
    return f"run-{uuid.uuid4().hex[:12]}"


def summarize(value: Any, depth: int = 0) -> Any:
    """A JSON-able, bounded summary of a state value (long lists cut to 10 + a count)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, dict):
        return {str(k): summarize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if depth == 0 and value and isinstance(value[0], dict) and "item_id" in value[0]:
            return {"count": len(value), "head": [v["item_id"] for v in value[:10]]}
        head = [summarize(v, depth + 1) for v in value[:10]]
        return head if len(value) <= 10 else {"count": len(value), "head": head}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def candidate_scores(candidates: list[dict]) -> list[CandidateScore]:
    """The candidate bus as :class:`CandidateScore` rows (at most ``MAX_CANDIDATES``).

    The bus is the funnel's own data, already typed, so the rows are built without
    validation (``model_construct``; ~130 rows a request, whose validation was ~1.2 ms of
    this function's 2.8 ms: cProfile, 300 warm ML-100K requests)."""

    def num(value: Any) -> float | None:
        return None if value is None else float(value)  # numpy scalars → float

    out = []
    for c in candidates[:MAX_CANDIDATES]:
        out.append(
            CandidateScore.model_construct(
                item_id=str(c["item_id"]),
                sources=sorted(c.get("sources", {})),
                coarse=num(c.get("coarse")),
                fine=num(c.get("fine")),
                final=num(c.get("final")),
            )
        )
    return out


class TraceRecorder:
    """Builds a :class:`RunTrace` from a graph run's stream chunks.

    Args:
        run_id: the run's id.
        request: ``user_id``, ``thread_id``, ``message``, ``k`` of the run.
        llm_calls: the run's :class:`~recpilot.llm.calls.CallLog` (None: no LLM calls are
            recorded); each node's trace holds the calls the log attributes to it.
        on_node: called with each :class:`NodeTrace` as soon as its node finishes (used to
            stream events); exceptions from it propagate.
    """

    def __init__(
        self,
        run_id: str,
        request: dict[str, Any],
        llm_calls: CallLog | None,
        on_node: Callable[[NodeTrace], None] | None = None,
    ) -> None:
        self.trace = RunTrace(
            run_id=run_id,
            thread_id=request.get("thread_id"),
            user_id=request.get("user_id"),
            message=request.get("message"),
            k=request.get("k", 10),
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        self._calls = llm_calls
        self._on_node = on_node
        self._state: dict[str, Any] = {}
        self._t0 = time.perf_counter()

    def _elapsed_ms(self) -> float:
        return round((time.perf_counter() - self._t0) * 1000, 2)

    def on_values(self, state: dict[str, Any]) -> None:
        """A "values" chunk: the full state after the last step (the next node's input)."""
        self._state = state

    def on_update(self, node: str, update: dict[str, Any] | None) -> NodeTrace:
        """An "updates" chunk: ``node`` finished and wrote ``update``; returns its trace."""
        update = update or {}
        end = self._elapsed_ms()
        stage = next(
            (s for s in reversed(update.get("stages") or []) if s.get("stage") == node), {}
        )
        ms = float(stage.get("ms", 0.0))
        calls: list[LLMCall] = []
        if self._calls is not None:
            calls = [c.model_copy() for c in self._calls.by_node(node)]
        before = self._state
        inputs = {}
        for key in stage.get("reads") or ():
            if key not in SKIP_OUTPUTS and key in before and before[key] is not None:
                inputs[key] = summarize(before[key])
        outputs = {k: summarize(v) for k, v in update.items() if k not in SKIP_OUTPUTS}
        cands = update.get("candidates")
        trace = NodeTrace(
            node=node,
            start_ms=round(max(0.0, end - ms), 2),
            end_ms=end,
            ms=ms,
            inputs=inputs,
            outputs=outputs,
            candidates=candidate_scores(cands) if cands is not None else None,
            llm_calls=calls,
            fell_back=bool(stage.get("fell_back", False)),
            codes=list(stage.get("codes") or []),
            note=str(stage.get("note", "")),
        )
        self.trace.nodes.append(trace)
        if self._on_node is not None:
            self._on_node(trace)
        return trace

    def feed(self, mode: str, chunk: Any) -> None:
        """Route one ``(mode, chunk)`` pair of ``graph.stream(stream_mode=[...])``."""
        if mode == "values":
            self.on_values(chunk)
        elif mode == "updates":
            for node, update in chunk.items():
                if not node.startswith("__"):
                    self.on_update(node, update)

    def finish(self, state: dict[str, Any] | None, error: BaseException | None = None) -> RunTrace:
        """Close the trace with the final state (or the error that stopped the run)."""
        trace = self.trace
        trace.total_ms = self._elapsed_ms()
        state = state or self._state
        trace.fallbacks = list(state.get("fallbacks", []))
        trace.dropped_ids = list(state.get("dropped_ids", []))
        if error is None:
            trace.items = [
                {"item_id": i.item_id, "title": i.title, "score": i.score}
                for i in state.get("items", [])
            ]
            trace.reply = state.get("reply", "")
        else:
            trace.error = f"{type(error).__name__}: {error}"
        calls = [c for n in trace.nodes for c in n.llm_calls]
        trace.llm_calls = len(calls)
        trace.prompt_tokens = sum(c.prompt_tokens for c in calls)
        trace.completion_tokens = sum(c.completion_tokens for c in calls)
        return trace
