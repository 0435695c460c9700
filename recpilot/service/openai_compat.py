"""``POST /v1/chat/completions``: the recommender behind the OpenAI chat protocol.

Any OpenAI client or chat front end can talk to recpilot: the last user message is the
request, ``user`` is the recpilot user id, and one conversation is one chat thread (the
``thread_id`` extra field, or a hash of ``user`` and the first user message). The answer
is the reply plus a numbered list of the items with their reasons; the structured
result rides along in the extra field ``recpilot`` (items, run id).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from recpilot.agent.runner import TurnResult
from recpilot.service.auth import Principal, require_api_key
from recpilot.service.engine import Engine
from recpilot.service.routes import ERRORS
from recpilot.service.schemas import ChatCompletionRequest, RecommendRequest

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=ERRORS)
MODEL_ID = "recpilot"


def thread_of(req: ChatCompletionRequest) -> str:
    """The chat thread of a conversation (see the module docstring)."""
    if req.thread_id:
        return req.thread_id
    first = next((m.text() for m in req.messages if m.role == "user"), "")
    digest = hashlib.sha256(f"{req.user or ''}\n{first}".encode()).hexdigest()[:16]
    return f"oa-{digest}"


def answer_text(result: TurnResult) -> str:
    """The assistant message: reply, then one line per item with its reason."""
    lines = [result.reply, ""] if result.items else [result.reply]
    for item in result.items:
        year = f" ({item.year})" if item.year else ""
        lines.append(f"{item.rank}. {item.title}{year} [id {item.item_id}] — {item.reason}")
    return "\n".join(lines)


def _extra(result: TurnResult, thread_id: str) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "thread_id": thread_id,
        "items": [i.model_dump() for i in result.items],
    }


@router.get("/models", tags=["openai"])
def models() -> dict[str, Any]:
    """The one model: ``recpilot``."""
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "recpilot"}],
    }


@router.post("/chat/completions", tags=["openai"], response_model=None)
async def chat_completions(
    req: ChatCompletionRequest,
    request: Request,
    caller: Principal = Depends(require_api_key),  # noqa: B008
) -> Any:
    """OpenAI-compatible chat completion (``stream`` supported) answered by the recommender.

    With a user key, ``user`` may be omitted (the key's user) or must be that user (403)."""
    engine: Engine = request.app.state.engine
    req = req.model_copy(update={"user": caller.as_user(req.user)})
    message = next((m.text() for m in reversed(req.messages) if m.role == "user"), "").strip()
    if not message:
        raise HTTPException(422, "the messages contain no user message with text")
    thread_id = thread_of(req)
    try:
        turn = RecommendRequest(user_id=req.user, message=message[:2000], k=req.k)
    except ValidationError as err:
        where = ".".join(str(p) for p in err.errors()[0]["loc"])
        raise HTTPException(422, f"invalid request: {where}: {err.errors()[0]['msg']}") from None
    result = await run_in_threadpool(engine.run, turn, thread_id)
    text = answer_text(result)
    created = int(time.time())
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:20]}"
    usage = {
        "prompt_tokens": result.llm.prompt_tokens,
        "completion_tokens": result.llm.completion_tokens,
        "total_tokens": result.llm.prompt_tokens + result.llm.completion_tokens,
    }
    if not req.stream:
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            "recpilot": _extra(result, thread_id),
        }

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **more,
        }
        return f"data: {json.dumps(body)}\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        for line in text.splitlines(keepends=True):
            yield chunk({"content": line})
        yield chunk({}, "stop", usage=usage, recpilot=_extra(result, thread_id))
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
