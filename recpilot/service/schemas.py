"""Request and response bodies of the HTTP service (pydantic; shown in the OpenAPI docs).

Requests forbid unknown fields (a typo is a 422, not a silently ignored option) and bound
every string and list, on top of the byte limit on the whole body.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recpilot.data.catalogue import Constraints
from recpilot.llm.limiter import LimiterStats
from recpilot.stores.feedback import FeedbackOut

__all__ = ["FeedbackOut"]  # re-exported: the feedback row is also a response body

ID_PATTERN = r"^[A-Za-z0-9._:@-]+$"


def _id() -> Any:
    return Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)


def _categories() -> Any:
    return Field(default_factory=list, max_length=50)


class ConstraintsIn(BaseModel):
    """Hard constraints on the returned items, and soft genre preferences
    (``prefer_categories`` / ``disfavor_categories``: a boost, not a filter); category
    names are matched leniently."""

    model_config = ConfigDict(extra="forbid")

    include_categories: list[str] = _categories()
    exclude_categories: list[str] = _categories()
    year_min: int | None = Field(default=None, ge=1800, le=2100)
    year_max: int | None = Field(default=None, ge=1800, le=2100)
    exclude_items: list[str] = Field(default_factory=list, max_length=1000)
    prefer_categories: list[str] = _categories()
    disfavor_categories: list[str] = _categories()

    def to_constraints(self) -> Constraints:
        """As the controller's :class:`~recpilot.data.catalogue.Constraints`."""
        return Constraints(**self.model_dump())


class RecommendRequest(BaseModel):
    """One recommendation: a user id and/or a text request, constraints, k."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = _id()
    message: str | None = Field(default=None, min_length=1, max_length=2000)
    k: int = Field(default=10, ge=1, le=100)
    constraints: ConstraintsIn = Field(default_factory=ConstraintsIn)
    fine_mode: Literal["pointwise", "listwise", "off"] | None = Field(
        default=None, description="Override the configured LLM fine-ranking mode."
    )


class ChatRequest(RecommendRequest):
    """One chat turn; turns of a ``thread_id`` share messages, constraints and shown items."""

    thread_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    message: str = Field(min_length=1, max_length=2000)  # type: ignore[assignment]


class FeedbackRequest(BaseModel):
    """A user's reaction to an item (``rating`` is required for kind ``rating``, 1–5)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="Required with an admin key; a user key's own user when left out.",
    )
    item_id: str = Field(min_length=1, max_length=64)
    kind: Literal["like", "dislike", "rating", "click", "skip"]
    rating: float | None = Field(default=None, ge=1, le=5)
    run_id: str | None = Field(default=None, max_length=64)
    thread_id: str | None = _id()

    @model_validator(mode="after")
    def _rating_iff_kind(self) -> FeedbackRequest:
        if (self.kind == "rating") != (self.rating is not None):
            raise ValueError("give 'rating' (1–5) exactly when kind is 'rating'")
        return self


class PromoteRequest(BaseModel):
    """Body of ``POST /v1/items/{item_id}/promote``."""

    audience: str = Field(default="anyone", min_length=1, max_length=200)
    attempts: int = Field(default=3, ge=1, le=5)


class DescribeRequest(BaseModel):
    """Body of ``POST /v1/items/{item_id}/describe`` (optional)."""

    attempts: int = Field(default=3, ge=1, le=5)


class HistoryItem(BaseModel):
    """One past interaction from the dataset."""

    item_id: str
    title: str
    rating: float | None = None
    timestamp: int | None = None


class ProfileOut(BaseModel):
    """What recpilot knows about a user.

    Attributes:
        known: the user has interactions in the active dataset.
        history_count: number of those interactions; ``recent_history`` are the newest 20.
        top_categories: categories of the user's liked (≥ 4★) items, most frequent first.
        feedback: feedback given through the service, newest first (at most 50).
        long_term: the long-term profile from ``recpilot.stores.profiles`` (None until
            that store is wired in, or when it holds nothing for the user).
    """

    user_id: str
    known: bool
    history_count: int
    recent_history: list[HistoryItem]
    top_categories: list[tuple[str, int]]
    feedback: list[FeedbackOut]
    long_term: dict[str, Any] | None = None


class ProfileDeleted(BaseModel):
    """What a profile deletion removed. Dataset history is not user-editable and stays."""

    user_id: str
    deleted_feedback: int
    deleted_long_term: bool = False
    deleted_threads: list[str] = []
    deleted_traces: int = 0


class ErrorOut(BaseModel):
    """Every error response: one clear message (and, for 422, the failing fields)."""

    error: str
    detail: list[dict[str, Any]] | None = None


class ReadyOut(BaseModel):
    """Readiness: each dependency's check ("ok", "off", or what failed)."""

    ready: bool
    checks: dict[str, str]
    llm_queue: LimiterStats | None = None  # the LLM limiter of this worker process


# -- OpenAI-compatible chat completions ------------------------------------------------


class ChatMessageIn(BaseModel):
    """An OpenAI chat message; content parts are reduced to their text."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text (text parts joined)."""
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if isinstance(p, dict))
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI ``/v1/chat/completions`` body; unknown OpenAI options are accepted and ignored.

    recpilot reads: the last user message (the request), ``user`` (the recpilot user id),
    and the extra fields ``thread_id`` (default: derived from ``user`` and the first user
    message, so one conversation is one thread) and ``k`` (default 5).
    """

    model_config = ConfigDict(extra="allow")

    model: str = "recpilot"
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    stream: bool = False
    user: str | None = Field(default=None, max_length=64)
    thread_id: str | None = _id()
    k: int = Field(default=5, ge=1, le=100)
