"""Pipelines as configurations of the one controller graph, and how one user is run.

A :class:`Pipeline` is not code: it is a set of inputs to ``recpilot.agent.graph``'s
compiled graph — which recall ``channels`` (``turn_input(channels=...)``; None lets the
rules planner choose), which ``fine_mode``, which model sits in
both scorer slots of the services, ``recall_model`` and ``coarse_model`` (``model``),
and which stage's output is read (``cut``):

- ``cut="recall"``: the recall node's candidates in recall order (for one channel, that
  channel's own ranking). This is how "a recall channel alone" is measured.
- ``cut="final"``: the respond node's top-k — what the user would get.

How the evaluation restricts the items the graph may return, without touching it: every
run gets ``shown=[...]`` in its input, the graph's "items already shown in this thread"
list that recall excludes. In full ranking it holds the items outside the evaluation's
item universe (k-core filter); in sampled ranking, every item except the user's 101
(held-out item + 100 negatives). ``shown`` is never put in an LLM prompt.

Sampled ranking (101 items) per pipeline:

- recall-cut pipelines: the channel's order over the 101 (items it does not return are
  "not ranked");
- ``recall+coarse``: recall over the 101 (``recall_per_channel`` = 101), coarse scores all
  of them (``coarse_keep`` = 101): the coarse order of the 101;
- ``+ fine``: the graph with ``coarse_keep`` = 20 — the LLM re-ranks the coarse top 20 —
  followed by the other 81 in coarse order (taken from the same graph without the LLM).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from recpilot.agent.graph import turn_input
from recpilot.agent.services import Services
from recpilot.funnel.fine_rank import blend
from recpilot.llm.calls import recording

FineMode = Literal["off", "pointwise", "listwise"]


class Pipeline(BaseModel):
    """One configuration of the graph (see the module docstring).

    Attributes:
        name: label in reports.
        model: key of the model in both scorer slots of the services (``als-default``,
            ``als-tuned``, ``hybrid``).
        channels: fixed recall channels, or None (the rules planner decides: every
            channel with an input).
        fine_mode: ``off``, ``pointwise`` or ``listwise``.
        cut: ``recall`` or ``final`` — which output is ranked.
    """

    name: str
    model: str
    channels: list[str] | None = None
    fine_mode: FineMode = "off"
    cut: Literal["recall", "final"] = "final"

    @property
    def uses_llm(self) -> bool:
        """True when the pipeline calls the LLM (fine ranking on)."""
        return self.fine_mode != "off"


@dataclass
class RunRecord:
    """What one graph run produced for one user.

    Attributes:
        ranked: the ranked item ids the metrics read (``cut`` of the pipeline).
        candidates: the recall stage's merged candidate ids.
        short: the final candidates as dicts (``item_id``, ``coarse``, ``fine``, …), in
            final order (for re-blending the fine stage offline).
        coarse_order: the coarse node's short list, in coarse order.
        wall_ms: wall time of the whole graph run, ms.
        stage_ms: ``{stage: ms}`` from ``state["stages"]``.
        llm_calls, prompt_tokens, completion_tokens, llm_failed: from the run's call log.
        llm_ms: summed LLM call latency, ms.
        fell_back: the fine stage kept the coarse order because the LLM failed.
    """

    ranked: list[str]
    candidates: list[str]
    short: list[dict[str, Any]] = field(default_factory=list)
    coarse_order: list[str] = field(default_factory=list)
    wall_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_ms: float = 0.0
    llm_failed: int = 0
    fell_back: bool = False


def run_graph(
    graph: Any,
    services: Services,
    user_id: str,
    pipeline: Pipeline,
    k: int,
    hidden: Sequence[str],
) -> RunRecord:
    """Run the graph once for ``user_id`` under ``pipeline``'s configuration.

    Args:
        graph: a :class:`~recpilot.agent.direct.DirectFunnel` (what the evaluation uses) or
            ``recpilot.agent.graph.build_graph()`` (no checkpointer): the same nodes.
        services: the runtime context (its ``collaborative`` is the pipeline's model, its
            ``llm`` None for non-LLM pipelines).
        user_id: a user of the training data.
        pipeline: the configuration.
        k: items the respond node returns.
        hidden: item ids the graph must not return (passed as ``shown``).

    Returns:
        The :class:`RunRecord`.
    """
    inputs = turn_input(
        user_id, None, k, None, pipeline.fine_mode, list(pipeline.channels or []) or None
    )
    inputs["shown"] = list(hidden)
    recall_ids: list[str] = []
    final: list[dict[str, Any]] = []
    coarse_order: list[str] = []
    items: list[str] = []
    stages: list[dict[str, Any]] = []
    started = time.perf_counter()
    with recording() as log:
        updates = list(graph.stream(inputs, context=services, stream_mode="updates"))
    wall_ms = (time.perf_counter() - started) * 1000
    for update in updates:
        for node, out in update.items():
            if not out:
                continue
            if node == "recall":
                recall_ids = [c["item_id"] for c in out.get("candidates", [])]
            if node in ("coarse", "fine") and "candidates" in out:
                final = [dict(c) for c in out["candidates"]]
            if node == "coarse":
                coarse_order = [c["item_id"] for c in out.get("candidates", [])]
            if node == "respond":
                items = [i.item_id for i in out.get("items", [])]
            stages += out.get("stages") or []  # each node's own record (a reducer appends)
    calls = log.calls
    return RunRecord(
        ranked=recall_ids if pipeline.cut == "recall" else items,
        candidates=recall_ids,
        short=final,
        coarse_order=coarse_order,
        wall_ms=wall_ms,
        stage_ms={s["stage"]: float(s["ms"]) for s in stages},
        llm_calls=len(calls),
        prompt_tokens=sum(c.prompt_tokens for c in calls),
        completion_tokens=sum(c.completion_tokens for c in calls),
        llm_ms=sum(c.latency_ms for c in calls),
        llm_failed=sum(1 for c in calls if c.error),
        fell_back=any(s["stage"] == "fine" and s.get("fell_back") for s in stages),
    )


def with_budgets(services: Services, **updates: Any) -> Services:
    """A copy of ``services`` whose settings have ``updates`` (e.g. ``coarse_keep=101``)."""
    return dataclasses.replace(services, settings=services.settings.model_copy(update=updates))


def reblend(short: list[dict[str, Any]], coarse_order: list[str], weight: float) -> list[str]:
    """The fine stage's order for another blend weight, from one run's recorded scores.

    The fine stage's own :func:`~recpilot.funnel.fine_rank.blend`: over the candidates the
    LLM scored (``fine`` not None), ``final = w · minmax(fine) + (1 - w) · minmax(coarse)``,
    sorted by ``-final`` with ties in coarse order; candidates the LLM did not score follow in
    coarse order. Lets one LLM run give the metric for every weight (no new LLM calls).

    Args:
        short: the fine node's candidates (``item_id``, ``coarse``, ``fine``), any order.
        coarse_order: the same ids in the coarse node's order (ties as the graph broke them).
        weight: weight of the LLM score in [0, 1].

    Returns:
        Item ids, best first.
    """
    by_id = {c["item_id"]: c for c in short}
    by_coarse = [by_id[i] for i in coarse_order if i in by_id]
    scored = [c for c in by_coarse if c.get("fine") is not None]
    rest = [c["item_id"] for c in by_coarse if c.get("fine") is None]
    if not scored:
        return [c["item_id"] for c in by_coarse]
    final = blend(
        {c["item_id"]: float(c["fine"]) for c in scored},
        {c["item_id"]: float(c["coarse"]) for c in scored},
        weight,
    )
    return sorted(final, key=lambda i: -final[i]) + rest
