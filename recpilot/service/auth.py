"""API keys (admin and user-scoped) and request size limits of the HTTP service.

Admin keys (``RECPILOT_API_KEYS``) may do everything. A user key
(``RECPILOT_USER_API_KEYS``, key → user id) acts only as its user: recommend and chat as
that user (a request without ``user_id`` is that user's), and read or delete only that
user's profile, threads, traces and feedback — anything else is a 403.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Principal:
    """Who is calling: an admin key (every user) or a user key bound to one user id.

    Attributes:
        admin: True for a key in ``settings.api_keys``.
        user_id: the user a user key is bound to (``settings.user_api_keys``); None for admins.
    """

    admin: bool
    user_id: str | None = None

    def may_act_as(self, user_id: str | None) -> bool:
        """True when this caller may read or act for ``user_id`` (None: no user)."""
        return self.admin or (user_id is not None and user_id == self.user_id)

    def as_user(self, user_id: str | None) -> str | None:
        """The user id a request acts as: ``user_id``, or a user key's own user when None.

        Raises:
            HTTPException: 403 when a user key names another user.
        """
        if self.admin:
            return user_id
        if user_id is None:
            return self.user_id
        self.check(user_id)
        return user_id

    def check(self, user_id: str | None) -> None:
        """Refuse access to ``user_id``'s data.

        Raises:
            HTTPException: 403 when this is a user key of another user (or of no user).
        """
        if not self.may_act_as(user_id):
            raise HTTPException(
                status_code=403,
                detail=f"this API key is scoped to user {self.user_id!r}; it cannot access "
                f"user {user_id!r}",
            )


def _given_key(request: Request) -> str | None:
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return given


def _matches(given: bytes, key: str) -> bool:
    return secrets.compare_digest(given, key.encode("utf-8"))


def require_api_key(request: Request) -> Principal:
    """FastAPI dependency: the request carries an admin key or a user key.

    The key is read from ``Authorization: Bearer KEY`` (what OpenAI clients send) or
    ``X-API-Key: KEY``. Every configured key is compared (constant time per key), so the
    time taken does not tell which list a key is in.

    Returns:
        The caller's :class:`Principal`.

    Raises:
        HTTPException: 401 when the key is missing or wrong.
    """
    settings = request.app.state.settings
    given = _given_key(request)
    given_bytes = (given or "").encode("utf-8")  # compare_digest refuses non-ASCII str
    principal: Principal | None = None
    if given:
        admin = [_matches(given_bytes, k) for k in settings.api_keys]
        users = [(u, _matches(given_bytes, k)) for k, u in settings.user_api_keys.items()]
        if any(admin):
            principal = Principal(admin=True)
        else:
            principal = next((Principal(False, u) for u, hit in users if hit), None)
    if principal is None:
        raise HTTPException(
            status_code=401,
            detail="missing or invalid API key (send 'Authorization: Bearer KEY' or 'X-API-Key')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


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
