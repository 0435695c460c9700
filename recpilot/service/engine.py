"""The service's one :class:`~recpilot.agent.runner.Recommender`, run concurrently.

The Recommender holds the LLM server (and the checkpointer connection) for the process's
lifetime. Graph runs are concurrent (each in a worker thread); what must not overlap is
guarded where it is:

- LLM calls pass the client's :class:`~recpilot.llm.limiter.LLMLimiter` (embedded: one in
  flight). A turn that would use the LLM is refused up front with
  :class:`~recpilot.llm.errors.LLMBusyError` (HTTP 503 + ``Retry-After``) when its queue is
  full, so LLM-off requests never wait behind LLM turns.
- Two turns of one chat thread run one after the other (the thread's lock, per process
  and, with PostgreSQL, across worker processes: :mod:`recpilot.stores.locks`).
- Profile writes hold the user's lock (``stores.profiles.update_profile``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from recpilot.agent.runner import Recommender, ThreadOfAnotherUserError, TurnResult
from recpilot.llm.errors import LLMBusyError
from recpilot.service.profiles import LongTermProfiles, ProfileService
from recpilot.service.schemas import RecommendRequest
from recpilot.stores.backends import feedback_store_for, trace_store_for
from recpilot.stores.locks import KeyedLocks, locks_for, thread_key
from recpilot.stores.traces.recorder import NodeTrace

CANDIDATES_IN_EVENT = 20


class Engine:
    """Runs turns for the routes.

    Args:
        rec: an entered :class:`Recommender` (the caller owns its lifetime).
    """

    def __init__(self, rec: Recommender) -> None:
        assert rec.services is not None, "enter the Recommender first"
        self.rec = rec
        self.settings = rec.settings
        self.locks: KeyedLocks = locks_for(rec.settings.database_url)
        self.traces = rec.traces or trace_store_for(rec.settings)
        self.feedback = feedback_store_for(rec.settings)
        self.profiles = ProfileService(
            rec.services.catalogue, self.feedback, LongTermProfiles(rec.settings, rec.store)
        )

    def uses_llm(self, req: RecommendRequest) -> bool:
        """True when the turn would call the LLM (with one configured): a message
        (understand), the LLM planner (``planner='llm'``), or fine ranking on
        (``fine_mode`` not ``off``)."""
        svc = self.rec.services
        if svc is None or svc.llm is None:
            return False
        fine = (req.fine_mode or self.settings.fine_mode) != "off"
        return bool(req.message) or self.settings.planner == "llm" or fine

    def admit(self, req: RecommendRequest) -> None:
        """Refuse an LLM turn when the LLM queue is full (admission control).

        Raises:
            LLMBusyError: the limiter has every slot busy and its queue full (the service
                answers 503 with ``Retry-After``).
        """
        svc = self.rec.services
        if svc is not None and svc.llm is not None and self.uses_llm(req):
            limiter = svc.llm.limiter
            if limiter.saturated():
                raise LLMBusyError(
                    "the LLM is busy (every slot in use and the queue full); retry later",
                    retry_after_s=limiter.retry_after_s,
                )

    def check_thread(self, user_id: str | None, thread_id: str) -> None:
        """Refuse continuing a chat thread that another user started (blocking: waits for
        a running turn of the thread, then reads its last checkpoint; call from a worker
        thread). The same rule the runner applies inside the turn, checked early so the
        service can answer 403 before an SSE stream starts. It holds the thread's lock
        like the runner does: a turn in progress writes intermediate checkpoints that are
        not the thread's state. A new thread (no checkpoint yet) passes.

        Raises:
            ThreadOfAnotherUserError: the thread's stored ``user_id`` differs from
                ``user_id`` (the service answers 403).
        """
        config = {"configurable": {"thread_id": thread_id}}
        with self.locks.hold(thread_key(thread_id)):
            previous = self.rec.chat_graph.get_state(config).values
        if previous and previous.get("user_id") != user_id:
            raise ThreadOfAnotherUserError(
                f"thread {thread_id!r} belongs to another user; start a new thread"
            )

    def run(
        self,
        req: RecommendRequest,
        thread_id: str | None = None,
        on_node: Any = None,
    ) -> TurnResult:
        """Run one turn (blocking; call from a worker thread).

        Turns of one ``thread_id`` run one at a time; others run concurrently.

        Raises:
            ValueError: bad constraints (unknown category, year_min after year_max).
            LLMBusyError: an LLM turn while the LLM queue is full.
        """
        self.admit(req)
        args = (
            req.user_id,
            req.message,
            req.k,
            req.constraints.to_constraints(),
            req.fine_mode,
        )
        if not thread_id:
            return self.rec.run(*args, on_node=on_node)
        with self.locks.hold(thread_key(thread_id)):
            return self.rec.run(*args, thread_id=thread_id, on_node=on_node)

    async def stream(
        self, req: RecommendRequest, thread_id: str | None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Run one turn in a worker thread, yielding ``(event, data)`` as nodes finish.

        Events: ``node`` (one per node: timing, note, top candidates, LLM calls), then
        ``result`` (the :class:`TurnResult`), or ``error`` (``{"error": message}``).
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

        def put(item: tuple[str, dict[str, Any]] | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                result = self.run(req, thread_id, lambda node: put(("node", node_event(node))))
                put(("result", result.model_dump(mode="json")))
            except (ValueError, LLMBusyError) as err:
                put(("error", {"error": str(err)}))
            except Exception as err:  # reported as an event; the stream must end cleanly
                put(("error", {"error": f"internal error: {type(err).__name__}"}))
            finally:
                put(None)

        worker = threading.Thread(target=work, name="recpilot-turn", daemon=True)
        worker.start()
        while (item := await queue.get()) is not None:
            yield item


def node_event(node: NodeTrace) -> dict[str, Any]:
    """The ``node`` SSE event: timing, note, top candidates and LLM call summaries."""
    return {
        "node": node.node,
        "start_ms": node.start_ms,
        "end_ms": node.end_ms,
        "ms": node.ms,
        "fell_back": node.fell_back,
        "note": node.note,
        "n_candidates": None if node.candidates is None else len(node.candidates),
        "candidates": [c.model_dump() for c in (node.candidates or [])[:CANDIDATES_IN_EVENT]],
        "llm_calls": [
            {
                "purpose": c.purpose,
                "latency_ms": round(c.latency_ms, 1),
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "retries": c.retries,
                "error": c.error,
            }
            for c in node.llm_calls
        ],
    }
