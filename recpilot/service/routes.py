"""The versioned API (``/v1``): recommend, chat (SSE), profiles, feedback, traces, and
grounded item texts (describe, promote)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse

from recpilot.agent.nodes.common import item_noun
from recpilot.agent.runner import TurnResult
from recpilot.content.facts import item_facts
from recpilot.content.grounded import Grounded, Kind, generate_grounded
from recpilot.llm.errors import LLMBusyError, LLMError
from recpilot.service.auth import Principal, require_api_key
from recpilot.service.engine import Engine
from recpilot.service.schemas import (
    ChatRequest,
    DescribeRequest,
    ErrorOut,
    FeedbackOut,
    FeedbackRequest,
    ProfileDeleted,
    ProfileOut,
    PromoteRequest,
    RecommendRequest,
)
from recpilot.stores.traces.recorder import RunTrace
from recpilot.stores.traces.store import TraceNotFound, TraceSummary

ERRORS = {
    400: {"model": ErrorOut, "description": "Bad input (e.g. unknown category)."},
    401: {"model": ErrorOut, "description": "Missing or invalid API key."},
    403: {"model": ErrorOut, "description": "A user key used for another user's data."},
    413: {"model": ErrorOut, "description": "Request body too large."},
    422: {"model": ErrorOut, "description": "Malformed body."},
    503: {"model": ErrorOut, "description": "LLM queue full (see Retry-After) or a store down."},
}
router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=ERRORS)
UserId = Annotated[str, Query(min_length=1, max_length=64)]


def engine_of(request: Request) -> Engine:
    """The app's :class:`Engine` (FastAPI dependency)."""
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(engine_of)]
Caller = Annotated[Principal, Depends(require_api_key)]


@router.post("/recommend", response_model=TurnResult, tags=["recommend"])
def recommend(req: RecommendRequest, engine: EngineDep, caller: Caller) -> TurnResult:
    """Recommend ``k`` items for a user id and/or a text request, under constraints.

    Runs the whole funnel once (nothing persisted but the trace). The response has the
    items with reasons, the plan, each stage's duration, fallbacks and the ``run_id`` of
    the trace (``GET /v1/traces/{run_id}``). A user key recommends as its user.
    """
    req = req.model_copy(update={"user_id": caller.as_user(req.user_id)})
    return engine.run(req)


@router.post(
    "/chat",
    tags=["recommend"],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream."}},
)
async def chat(req: ChatRequest, engine: EngineDep, caller: Caller) -> EventSourceResponse:
    """One chat turn of ``thread_id``, as a Server-Sent-Events stream.

    Events: ``node`` (JSON: node name, start/end/duration in ms, note, candidates after the
    node, LLM calls) as each node finishes; then ``result`` (the whole turn: items, reply,
    run id) or ``error`` (``{"error": ...}``). Constraints stated in earlier turns of the
    thread keep applying; items already shown are not repeated.

    403 (JSON, no stream): ``thread_id`` is another user's thread; 503: LLM queue full.
    """

    req = req.model_copy(update={"user_id": caller.as_user(req.user_id)})
    engine.admit(req)  # a full LLM queue: 503 before the stream starts
    # another user's thread: 403 before the stream starts (the app's handler)
    await run_in_threadpool(engine.check_thread, req.user_id, req.thread_id)

    async def events():  # noqa: ANN202
        async for event, data in engine.stream(req, req.thread_id):
            yield {"event": event, "data": json.dumps(data)}

    return EventSourceResponse(events(), ping=15)


@router.get("/profiles/{user_id}", response_model=ProfileOut, tags=["users"])
def get_profile(user_id: str, engine: EngineDep, caller: Caller) -> ProfileOut:
    """The user's profile: dataset history, liked categories, feedback, long-term memory."""
    caller.check(user_id)
    profile = engine.profiles.get(user_id)
    if profile is None:
        raise HTTPException(404, f"unknown user {user_id!r}")
    return profile


@router.delete("/profiles/{user_id}", response_model=ProfileDeleted, tags=["users"])
def delete_profile(user_id: str, engine: EngineDep, caller: Caller) -> ProfileDeleted:
    """Forget the user: feedback, long-term profile, chat threads and traces."""
    caller.check(user_id)
    return engine.profiles.delete(user_id)


@router.post("/feedback", response_model=FeedbackOut, status_code=201, tags=["users"])
def feedback(req: FeedbackRequest, engine: EngineDep, caller: Caller) -> FeedbackOut:
    """Store a user's reaction to a catalogue item (like, dislike, rating, click, skip).

    Likes, dislikes and ratings (>= 4 like, <= 2 dislike) also go into the user's
    long-term profile, which later recommendations read. A user key may leave out
    ``user_id`` (its own user); an admin key must give it (422 otherwise)."""
    user_id = caller.as_user(req.user_id)
    if user_id is None:
        raise HTTPException(422, "user_id is required (an admin key acts for no one user)")
    req = req.model_copy(update={"user_id": user_id})
    catalogue = engine.rec.services.catalogue  # type: ignore[union-attr]
    if not catalogue.has(req.item_id):
        raise HTTPException(422, f"item id {req.item_id!r} is not in the catalogue")
    row = engine.feedback.add(req)  # the row first: a failed profile update keeps it
    engine.profiles.long_term.record(req)  # likes/dislikes shape later requests (user lock)
    return row


@router.get("/traces", response_model=list[TraceSummary], tags=["traces"])
async def list_traces(
    engine: EngineDep,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    thread_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[TraceSummary]:
    """The newest runs, newest first (optionally of one user or thread); a user key sees
    only its user's runs."""
    user_id = caller.as_user(user_id)
    return await run_in_threadpool(engine.traces.list, limit, user_id, thread_id)


@router.get("/traces/{run_id}", response_model=RunTrace, tags=["traces"])
async def get_trace(run_id: str, engine: EngineDep, caller: Caller) -> RunTrace:
    """One run: every node's timing, inputs/outputs, candidates, LLM calls, fallbacks.

    A user key gets 404 for another user's run, as for a run that does not exist: a
    403 would tell it whose run the id is."""
    try:
        trace = await run_in_threadpool(engine.traces.get, run_id)
    except TraceNotFound as err:
        raise HTTPException(404, str(err)) from None
    if not caller.may_act_as(trace.user_id):
        raise HTTPException(404, f"no trace with run id {run_id!r}")
    return trace


def _grounded(engine: Engine, item_id: str, kind: Kind, audience: str, attempts: int) -> Grounded:
    """Write a fact-checked text about one item (see :mod:`recpilot.content.grounded`).

    Raises:
        HTTPException: 404 for an unknown item id, 503 when the service runs without an
            LLM or the LLM is down or timed out (with ``Retry-After``), 422 when every
            attempt failed the fact-check (body lists the problems).
        LLMBusyError: the LLM queue is full (the app answers 503 with ``Retry-After``).
    """
    svc = engine.rec.services
    assert svc is not None
    noun = item_noun(svc)
    if not svc.catalogue.has(item_id):
        raise HTTPException(404, f"unknown {noun} id {item_id!r}: not in the catalogue")
    if svc.llm is None:
        raise HTTPException(503, "this service runs without an LLM (started with use_llm=False)")
    facts = item_facts(svc.catalogue, item_id, noun)
    # LLM calls pass the client's limiter (one in flight for the embedded server; a full
    # queue raises LLMBusyError, answered 503 with Retry-After by the app).
    try:
        result = generate_grounded(
            svc.llm, svc.catalogue, facts, kind, audience=audience, attempts=attempts
        )
    except LLMBusyError:
        raise
    except LLMError as err:  # unreachable or timed out (invalid output counts as an attempt)
        raise HTTPException(
            503,
            f"the LLM failed ({err}); retry shortly",
            headers={"Retry-After": str(svc.llm.limiter.retry_after_s)},
        ) from None
    if not result.ok:
        problems = "; ".join(p for attempt in result.problems for p in attempt)
        raise HTTPException(
            422, f"every attempt ({result.attempts}) failed the fact-check: {problems}"
        )
    return result


@router.post("/items/{item_id}/describe", response_model=Grounded, tags=["items"])
def describe_item(
    item_id: str, engine: EngineDep, req: DescribeRequest | None = None
) -> Grounded:
    """A short description of the item; every fact (year, categories, people, rating
    figures) checked by code against the catalogue, its text and its statistics.

    404: unknown item id; 503: no LLM, the LLM down or busy (``Retry-After``); 422: every
    attempt failed the fact-check."""
    return _grounded(engine, item_id, "description", "", (req or DescribeRequest()).attempts)


@router.post("/items/{item_id}/promote", response_model=Grounded, tags=["items"])
def promote_item(item_id: str, req: PromoteRequest, engine: EngineDep) -> Grounded:
    """Short ad copy for the item and an audience, fact-checked like ``describe``."""
    return _grounded(engine, item_id, "promotion", req.audience, req.attempts)
