"""The LLM layer's errors (imported by the client and the limiter; re-exported by the client)."""

from __future__ import annotations


class LLMError(Exception):
    """An LLM call failed: unreachable, timed out, or invalid output, after retries.

    Args:
        message: what failed.
        unreachable: True when the backend could not be reached or timed out (callers may
            stop trying the LLM for the rest of a request); False for invalid output.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class LLMConfigError(LLMError):
    """The LLM endpoint refuses recpilot's configuration: bad key (401/403) or unknown model
    or path (404). Not transient: commands refuse to start on it (exit 2) with the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message, unreachable=True)


class LLMBusyError(LLMError):
    """No LLM slot: the limiter's queue is full, or the wait for a slot timed out.

    Graph nodes fall back on it like on any :class:`LLMError` (``unreachable=True``: the
    rest of the turn skips the LLM); the HTTP service answers 503 with ``Retry-After``.

    Args:
        message: what was busy.
        retry_after_s: seconds after which a retry is likely to be admitted.
    """

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message, unreachable=True)
        self.retry_after_s = retry_after_s
