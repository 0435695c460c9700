"""Run the controller: start what it needs, run turns, report what happened.

:class:`Recommender` is the one entry point the CLI (and later the HTTP service) uses:
it resolves the LLM (a configured endpoint, or the embedded server started for the
lifetime of the ``with`` block), loads the services, opens the conversation
checkpointer and runs graph turns, returning a :class:`TurnResult`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from recpilot.agent.direct import DirectFunnel
from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.services import Services, build_services, open_llm
from recpilot.agent.state import Intent, Plan, RecommendedItem, StageRecord
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Constraints
from recpilot.llm.calls import recording
from recpilot.llm.client import LLMClient
from recpilot.stores.backends import Traces, trace_store_for
from recpilot.stores.checkpoints import close_checkpointer, open_checkpointer
from recpilot.stores.profiles import check_user_id, open_store
from recpilot.stores.traces.export import Exporter, exporters_from
from recpilot.stores.traces.recorder import NodeTrace, TraceRecorder, new_run_id

log = logging.getLogger(__name__)


class ThreadOfAnotherUserError(ValueError):
    """A chat turn named a thread that belongs to another user (the service answers 403)."""


class LLMUsage(BaseModel):
    """LLM calls of one turn: count, tokens (as reported by the backend), time (ms)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    failed: int = 0


class TurnResult(BaseModel):
    """Everything one run of the graph produced, for printing or returning as JSON."""

    user_id: str | None
    thread_id: str | None
    message: str | None
    items: list[RecommendedItem]
    reply: str
    intent: Intent = Intent()
    plan: Plan | None = None  # None: a turn the tools answered without the funnel
    tools: list[dict] = []  # the controller's validated calls: {name, args, source}
    controller: dict | None = None  # how they were chosen: source, repairs, fallback
    constraints: Constraints
    stages: list[StageRecord]
    stages_ran: list[str]
    fine_fell_back: bool
    fallbacks: list[str]
    dropped_ids: list[str]
    pseudo_items: list[str] = []  # sample generation's validated ids (cold path)
    llm: LLMUsage
    total_ms: float
    run_id: str | None = None


class Recommender(contextlib.AbstractContextManager["Recommender"]):
    """The controller with everything it needs started; use as a context manager.

    Args:
        settings: configuration (data directory, dataset, LLM endpoint, …).
        use_llm: False runs without any LLM (rules plan, coarse order, no server).
        services: builds the runtime context from the settings and the LLM client
            (default :func:`build_services`: the dataset's trained models); an offline
            evaluation passes one that trains on its split's training data only.

    Raises:
        FileNotFoundError: dataset, index or model missing (message names the fix).
        recpilot.llm.server.LLMSetupError: the embedded LLM cannot start.
    """

    def __init__(
        self,
        settings: Settings,
        use_llm: bool = True,
        services: Callable[[Settings, LLMClient | None], Services] = build_services,
    ) -> None:
        self.settings = settings
        self.use_llm = use_llm
        self._build_services = services
        self._stack = contextlib.ExitStack()
        self.services: Services | None = None
        self.traces: Traces | None = None
        self.exporters: list[Exporter] = []

    def __enter__(self) -> Recommender:
        try:
            llm = None
            if self.use_llm:
                llm = self._stack.enter_context(open_llm(self.settings))
            self.services = self._build_services(self.settings, llm)
            self.checkpointer = open_checkpointer(self.settings.home, self.settings.database_url)
            self._stack.callback(close_checkpointer, self.checkpointer)
            self.store = self._stack.enter_context(open_store(self.settings))
            self.chat_graph = build_graph(self.checkpointer, self.store)
            self.once_graph = build_graph(store=self.store)
            self.direct = DirectFunnel(store=self.store)
            if self.settings.traces:
                self.traces = trace_store_for(self.settings)
                self._stack.callback(self.traces.close)
                self.exporters = exporters_from(self.settings)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def normalized(self, constraints: Constraints) -> Constraints:
        """``constraints`` with category names in the catalogue's spelling.

        Raises:
            ValueError: a category the catalogue does not know (the message lists them),
                a category both included and excluded, or year_min after year_max.
        """
        assert self.services is not None
        catalogue = self.services.catalogue
        lo, hi = constraints.year_min, constraints.year_max
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"year_min {lo} is after year_max {hi}")

        def fix(names: list[str]) -> list[str]:
            out = []
            for name in names:
                found = catalogue.normalize_category(name)
                if found is None:
                    known = ", ".join(catalogue.category_vocabulary())
                    raise ValueError(f"unknown category {name!r}; known: {known}")
                out.append(found)
            return out

        include, exclude = fix(constraints.include_categories), fix(constraints.exclude_categories)
        if both := sorted(set(include) & set(exclude)):
            raise ValueError(f"categories both included and excluded: {', '.join(both)}")
        return constraints.model_copy(
            update={
                "include_categories": include,
                "exclude_categories": exclude,
                "prefer_categories": fix(constraints.prefer_categories),
                "disfavor_categories": fix(constraints.disfavor_categories),
            }
        )

    def run(
        self,
        user_id: str | None,
        message: str | None = None,
        k: int = 10,
        constraints: Constraints | None = None,
        fine_mode: Literal["pointwise", "listwise", "off"] | None = None,
        thread_id: str | None = None,
        channels: list[str] | None = None,
        sample_generation: bool | None = None,
        on_node: Callable[[NodeTrace], None] | None = None,
    ) -> TurnResult:
        """Run one turn.

        Args:
            user_id: catalogue user id, or None for an anonymous (cold) user.
            message: the user's text, or None for a plain recommendation request.
            k: number of items to return (1–100).
            constraints: hard constraints given by the caller (merged with the message's).
            fine_mode: override of ``settings.fine_mode`` for this turn.
            thread_id: chat thread; turns of a thread share messages, constraints and
                already-shown items (persisted by the checkpointer). None: a one-off
                request, nothing persisted.
            channels: fix the recall channels (None: the plan decides).
            sample_generation: cold path LLM pseudo-interactions on/off for this turn
                (None: ``settings.sample_generation``).
            on_node: called with each node's :class:`NodeTrace` as soon as it finishes
                (the HTTP service streams these).

        Returns:
            The :class:`TurnResult`; its ``run_id`` names the stored trace (when
            ``settings.traces`` is on).

        Raises:
            ValueError: ``k`` out of range, an invalid user id, unknown fine mode or
                category, or
                ``thread_id`` names a thread of another user (threads are per user).
        """
        if not 1 <= k <= 100:
            raise ValueError(f"k must be between 1 and 100, got {k}")
        if fine_mode not in (None, "pointwise", "listwise", "off"):
            raise ValueError(f"fine mode must be pointwise, listwise or off, got {fine_mode!r}")
        assert self.services is not None, "use Recommender as a context manager"
        if user_id is not None:
            check_user_id(user_id)
        if constraints is not None:
            constraints = self.normalized(constraints)
        graph: Any = self.once_graph
        config: dict[str, Any] = {}
        if not thread_id and not (message or "").strip():
            graph = self.direct  # no controller, no thread: the funnel in a plain loop
        elif thread_id:
            graph, config = self.chat_graph, {"configurable": {"thread_id": thread_id}}
            previous = graph.get_state(config).values
            if previous and previous.get("user_id") != user_id:
                raise ThreadOfAnotherUserError(
                    f"thread {thread_id!r} belongs to another user; start a new thread"
                )
            if user_id:  # lets `profile forget` find the user's threads
                config["metadata"] = {"user_id": user_id}
        request = {"user_id": user_id, "thread_id": thread_id, "message": message, "k": k}
        run_id = new_run_id()
        started = time.perf_counter()
        state: dict[str, Any] | None = None
        with recording() as log:  # this run's LLM calls, by node
            recorder = TraceRecorder(run_id, request, log, on_node)
            try:
                inputs = turn_input(
                    user_id, message, k, constraints, fine_mode, channels, sample_generation
                )
                for mode, chunk in graph.stream(
                    inputs, config=config, context=self.services, stream_mode=["updates", "values"]
                ):
                    recorder.feed(mode, chunk)
                    if mode == "values":
                        state = chunk
            except BaseException as err:
                self._store(recorder.finish(None, err))
                raise
        total_ms = (time.perf_counter() - started) * 1000
        assert state is not None
        saved = self._store(recorder.finish(state))
        calls = log.calls
        usage = LLMUsage(
            calls=len(calls),
            prompt_tokens=sum(c.prompt_tokens for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            latency_ms=round(sum(c.latency_ms for c in calls), 1),
            failed=sum(1 for c in calls if c.error),
        )
        stages = state["stages"]
        return TurnResult(
            user_id=user_id,
            thread_id=thread_id,
            message=message,
            items=state["items"],
            reply=state["reply"],
            intent=state.get("intent") or Intent(source="agent"),
            plan=state.get("plan"),
            tools=state.get("tool_calls") or [],
            controller=state.get("controller"),
            constraints=state.get("thread_constraints") or Constraints(),
            stages=stages,
            stages_ran=[s["stage"] for s in stages],
            fine_fell_back=any(s["stage"] == "fine" and s["fell_back"] for s in stages),
            fallbacks=state["fallbacks"],
            dropped_ids=state["dropped_ids"],
            pseudo_items=state.get("pseudo_items", []),
            llm=usage,
            total_ms=round(total_ms, 1),
            run_id=run_id if saved else None,
        )

    def _store(self, trace: Any) -> bool:
        """Save a finished trace and hand it to the exporters (their errors are logged).

        Returns:
            True when the trace was saved; False without a trace store, or when saving
            failed (e.g. the database restarts): the answer must not be lost with it.
        """
        if self.traces is None:
            return False
        try:
            self.traces.save(trace)
        except Exception:  # a trace must never break a recommendation
            log.exception("trace %s not saved", trace.run_id)
            return False
        for export in self.exporters:
            try:
                export(trace)
            except Exception:  # an exporter must never break a recommendation
                log.exception("trace export failed for %s", trace.run_id)
        return True
