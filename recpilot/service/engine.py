"""The service's one :class:`~recpilot.agent.runner.Recommender` and its run lock.

The Recommender holds the LLM server (and the checkpointer connection) for the process's
lifetime. Graph runs are serialised by one lock: the embedded LLM serves one request at a
time anyway, and the chat checkpointer is one SQLite connection.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from recpilot.agent.runner import Recommender, TurnResult
from recpilot.service.profiles import LongTermProfiles, ProfileService
from recpilot.service.schemas import RecommendRequest
from recpilot.stores.feedback import FEEDBACK_FILE, FeedbackStore
from recpilot.stores.traces.recorder import NodeTrace
from recpilot.stores.traces.store import TraceStore

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
        self.lock = threading.Lock()
        self.traces = rec.traces or TraceStore.in_home(rec.settings.home)
        self.feedback = FeedbackStore(rec.settings.home / FEEDBACK_FILE)
        self.profiles = ProfileService(
            rec.services.catalogue, self.feedback, LongTermProfiles(rec.settings, rec.store)
        )

    def run(
        self,
        req: RecommendRequest,
        thread_id: str | None = None,
        on_node: Any = None,
    ) -> TurnResult:
        """Run one turn (blocking; waits for the lock).

        Raises:
            ValueError: bad constraints (unknown category, year_min after year_max).
        """
        with self.lock:
            return self.rec.run(
                req.user_id,
                req.message,
                req.k,
                req.constraints.to_constraints(),
                req.fine_mode,
                thread_id=thread_id,
                on_node=on_node,
            )

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
            except ValueError as err:
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
