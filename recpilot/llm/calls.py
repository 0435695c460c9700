"""LLM calls recorded per run, keyed by the graph node that made them.

A run (one graph turn, one evaluation user, one benchmark call) opens
:func:`recording`; every :class:`~recpilot.llm.client.LLMClient` call made inside it, in
this thread or in a context copied from it (LangGraph's node executor), is added to
that run's :class:`CallLog` together with the node named by :func:`in_node`. When the
``with`` block ends the log is the caller's to keep or drop: nothing accumulates in the
process, however many requests ``recpilot serve`` answers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recpilot.llm.client import LLMCall

_LOG: ContextVar[CallLog | None] = ContextVar("recpilot_llm_call_log", default=None)
_NODE: ContextVar[str | None] = ContextVar("recpilot_llm_node", default=None)


class CallLog:
    """The LLM calls of one run, in call order, each with the node that made it.

    Attributes:
        calls: every :class:`~recpilot.llm.client.LLMCall`, failed ones included.
        nodes: the node of each call (None outside any node), aligned with ``calls``.
    """

    def __init__(self) -> None:
        self.calls: list[LLMCall] = []
        self.nodes: list[str | None] = []
        self._lock = threading.Lock()

    def add(self, call: LLMCall, node: str | None = None) -> None:
        """Append one call made by ``node``."""
        with self._lock:
            self.calls.append(call)
            self.nodes.append(node)

    def by_node(self, node: str) -> list[LLMCall]:
        """The calls made by ``node``, in order."""
        return [c for c, n in zip(self.calls, self.nodes, strict=True) if n == node]

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Iterator[LLMCall]:
        return iter(list(self.calls))


@contextlib.contextmanager
def recording() -> Iterator[CallLog]:
    """Record the LLM calls made inside the ``with`` block into a fresh :class:`CallLog`.

    Blocks nest: an inner block records its calls in its own log only.
    """
    log = CallLog()
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


@contextlib.contextmanager
def in_node(name: str) -> Iterator[None]:
    """Attribute the LLM calls made inside the ``with`` block to graph node ``name``."""
    token = _NODE.set(name)
    try:
        yield
    finally:
        _NODE.reset(token)


def record(call: LLMCall) -> None:
    """Add ``call`` to the active run's log (no-op outside :func:`recording`)."""
    log = _LOG.get()
    if log is not None:
        log.add(call, _NODE.get())
