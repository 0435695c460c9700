"""API keys and request size limits of the HTTP service."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def require_api_key(request: Request) -> None:
    """FastAPI dependency: the request carries one of ``settings.api_keys``.

    The key is read from ``Authorization: Bearer KEY`` (what OpenAI clients send) or
    ``X-API-Key: KEY``.

    Raises:
        HTTPException: 401 when the key is missing or wrong.
    """
    keys: list[str] = request.app.state.settings.api_keys
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    given_bytes = (given or "").encode("utf-8")  # compare_digest refuses non-ASCII str
    if not given or not any(secrets.compare_digest(given_bytes, k.encode("utf-8")) for k in keys):
        raise HTTPException(
            status_code=401,
            detail="missing or invalid API key (send 'Authorization: Bearer KEY' or 'X-API-Key')",
            headers={"WWW-Authenticate": "Bearer"},
        )


class BodyLimitMiddleware:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a JSON 413.

    Checks ``Content-Length`` up front; a body sent without it (chunked) is read here, up
    to the limit, and replayed to the app (bodies are small: the limit is tens of KiB).

    Args:
        app: the wrapped ASGI app.
        max_bytes: largest accepted body, bytes.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            {"error": f"request body larger than {self.max_bytes} bytes"}, status_code=413
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 413."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
