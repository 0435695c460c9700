"""How many LLM calls may be in flight at once, and how many may wait: :class:`LLMLimiter`.

The embedded llama-cpp-python server computes one completion at a time; a second request
sent to it only queues inside the server, where nothing can bound or observe it. So every
call of an :class:`~recpilot.llm.client.LLMClient` passes through one limiter per process:
``max_in_flight`` calls run, up to ``max_waiting`` more wait in arrival order (FIFO: a
caller arriving while others wait queues behind them, even when a slot is free for a
moment), and a call that finds the queue full — or waits longer than
``wait_timeout_s`` — gets :class:`LLMBusyError` at once. The graph's nodes treat that
like any :class:`~recpilot.llm.client.LLMError` (fall back, marked in the trace); the HTTP
service checks :meth:`LLMLimiter.saturated` before starting an LLM turn and answers 503
with ``Retry-After`` instead of queueing it (admission control).

Sizes come from the settings (:func:`limiter_from_settings`): embedded → one in flight,
a hosted endpoint (vLLM, OpenAI) → ``llm_max_in_flight`` (it batches requests).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator

from pydantic import BaseModel

from recpilot.config.settings import Settings
from recpilot.llm.errors import LLMBusyError

WAITS_KEPT = 1024  # queue waits kept for the percentiles in LimiterStats


class LimiterStats(BaseModel):
    """A snapshot of one limiter (for ``/v1/ready``, benchmarks and logs).

    Attributes:
        max_in_flight: calls allowed at once.
        max_waiting: calls allowed to wait.
        in_flight: calls running now.
        waiting: calls waiting now.
        admitted: calls admitted since start.
        refused: calls refused (queue full or waited too long) since start.
        wait_p50_ms, wait_p95_ms, wait_max_ms: queue wait of the last ``WAITS_KEPT``
            admitted calls, milliseconds (0 when none).
    """

    max_in_flight: int
    max_waiting: int
    in_flight: int
    waiting: int
    admitted: int
    refused: int
    wait_p50_ms: float
    wait_p95_ms: float
    wait_max_ms: float


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    pos = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[pos]


class LLMLimiter:
    """A bounded semaphore with a bounded, timed, first-in-first-out wait queue
    (thread-safe). Each waiting call holds a ticket; only the oldest ticket may take a
    freed slot, so a newly arriving call never overtakes a waiting one.

    Args:
        max_in_flight: calls that may run at once (>= 1).
        max_waiting: calls that may wait for a slot (>= 0); one more is refused.
        wait_timeout_s: longest wait for a slot, seconds; then :class:`LLMBusyError`.
        retry_after_s: the hint given to refused callers (HTTP ``Retry-After``), seconds.
    """

    def __init__(
        self,
        max_in_flight: int = 1,
        max_waiting: int = 4,
        wait_timeout_s: float = 60.0,
        retry_after_s: int = 5,
    ) -> None:
        if max_in_flight < 1 or max_waiting < 0:
            raise ValueError("max_in_flight must be >= 1 and max_waiting >= 0")
        self.max_in_flight = max_in_flight
        self.max_waiting = max_waiting
        self.wait_timeout_s = wait_timeout_s
        self.retry_after_s = retry_after_s
        self._cond = threading.Condition()
        self._in_flight = 0
        self._queue: deque[int] = deque()  # tickets of the waiting calls, oldest first
        self._tickets = 0
        self._admitted = 0
        self._refused = 0
        self._waits_ms: deque[float] = deque(maxlen=WAITS_KEPT)

    def saturated(self) -> bool:
        """True when a new call would be refused now (every slot busy, queue full)."""
        with self._cond:
            busy = self._in_flight >= self.max_in_flight or bool(self._queue)
            return busy and len(self._queue) >= self.max_waiting

    def _refuse(self, why: str) -> LLMBusyError:
        self._refused += 1
        return LLMBusyError(why, retry_after_s=self.retry_after_s)

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one slot for the ``with`` block; yields the queue wait in milliseconds.

        Raises:
            LLMBusyError: the queue is full, or no slot freed within ``wait_timeout_s``.
        """
        start = time.perf_counter()
        with self._cond:
            if self._in_flight >= self.max_in_flight or self._queue:
                if len(self._queue) >= self.max_waiting:
                    raise self._refuse(
                        f"LLM busy: {self._in_flight} call(s) running and "
                        f"{len(self._queue)} waiting (the queue is full)"
                    )
                self._tickets += 1
                ticket = self._tickets
                self._queue.append(ticket)
                try:
                    got = self._cond.wait_for(
                        lambda: self._queue[0] == ticket and self._in_flight < self.max_in_flight,
                        self.wait_timeout_s,
                    )
                finally:
                    self._queue.remove(ticket)
                    self._cond.notify_all()  # the next ticket may be first now
                if not got:
                    raise self._refuse(
                        f"LLM busy: no slot within {self.wait_timeout_s:g} s of queueing"
                    )
            self._in_flight += 1
            self._admitted += 1
            waited_ms = (time.perf_counter() - start) * 1000
            self._waits_ms.append(waited_ms)
        try:
            yield waited_ms
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()  # only the oldest ticket proceeds

    def stats(self) -> LimiterStats:
        """The current :class:`LimiterStats`."""
        with self._cond:
            waits = sorted(self._waits_ms)
            return LimiterStats(
                max_in_flight=self.max_in_flight,
                max_waiting=self.max_waiting,
                in_flight=self._in_flight,
                waiting=len(self._queue),
                admitted=self._admitted,
                refused=self._refused,
                wait_p50_ms=round(_percentile(waits, 0.5), 1),
                wait_p95_ms=round(_percentile(waits, 0.95), 1),
                wait_max_ms=round(waits[-1], 1) if waits else 0.0,
            )


def limiter_from_settings(settings: Settings, embedded: bool) -> LLMLimiter:
    """The limiter for a backend: embedded → 1 in flight; hosted → ``llm_max_in_flight``.

    Args:
        settings: ``llm_max_in_flight``, ``llm_max_waiting``, ``llm_wait_timeout_s``.
        embedded: True for the llama-cpp-python server recpilot starts (or one
            ``recpilot llm serve``/a parent process started), which runs one call at a time.

    Returns:
        A fresh :class:`LLMLimiter`.
    """
    return LLMLimiter(
        max_in_flight=1 if embedded else settings.llm_max_in_flight,
        max_waiting=settings.llm_max_waiting,
        wait_timeout_s=settings.llm_wait_timeout_s,
    )
