"""The FastAPI app: lifespan (one Recommender), middleware, error handlers, health, web page.

``create_app(settings)`` builds it; ``recpilot serve`` runs it with uvicorn. Endpoints
under ``/v1`` need an API key (see :mod:`recpilot.service.auth`); ``/v1/health``,
``/v1/ready``, the OpenAPI docs (``/docs``, ``/openapi.json``) and the web page (``/web/``)
do not. Every error is JSON ``{"error": "..."}``; no traceback reaches a client.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from recpilot.agent.runner import Recommender
from recpilot.config.settings import Settings
from recpilot.service import openai_compat, routes
from recpilot.service.auth import BodyLimitMiddleware
from recpilot.service.engine import Engine
from recpilot.service.schemas import ReadyOut

log = logging.getLogger("recpilot.service")


def _field_errors(err: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for e in err.errors():
        out.append({"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    """JSON errors everywhere: HTTP errors, validation errors, bad input, the unexpected."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc)
        first = fields[0] if fields else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        return JSONResponse(
            {"error": f"invalid request: {where}: {first['msg']}", "detail": fields},
            status_code=422,
        )

    @app.exception_handler(ValueError)
    async def bad_input(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": f"internal error ({type(exc).__name__}); see the server log"},
            status_code=500,
        )


def readiness(engine: Engine) -> ReadyOut:
    """Check the LLM endpoint, Chroma and the SQLite stores (blocking; a few ms to seconds)."""
    checks: dict[str, str] = {}
    svc = engine.rec.services
    assert svc is not None
    if svc.llm is None:
        checks["llm"] = "off"
    else:
        checks["llm"] = "ok" if svc.llm.ping(timeout_s=3) else f"unreachable: {svc.llm.base_url}"
    try:
        n = svc.index.count()
        checks["chroma"] = "ok" if n > 0 else "empty index"
    except Exception as err:  # any Chroma failure means not ready
        checks["chroma"] = f"error: {err}"
    stores = {
        "traces": engine.traces.ping,
        "feedback": engine.feedback.ping,
        "checkpoints": lambda: engine.rec.checkpointer.conn.execute("SELECT 1").fetchone(),
    }
    for name, ping in stores.items():
        try:
            ping()
            checks[name] = "ok"
        except Exception as err:  # sqlite3.Error and friends
            checks[name] = f"error: {err}"
    ready = all(v in ("ok", "off") for v in checks.values())
    return ReadyOut(ready=ready, checks=checks)


def create_app(
    settings: Settings, use_llm: bool = True, recommender: Recommender | None = None
) -> FastAPI:
    """Build the app.

    Args:
        settings: configuration (``api_keys``, ``max_request_bytes``, data directory, LLM).
        use_llm: False serves without any LLM (rules plan, coarse order).
        recommender: an already entered Recommender to serve (the caller closes it);
            None: one is opened at startup and closed at shutdown.

    Returns:
        The FastAPI app.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.ExitStack() as stack:
            rec = recommender or stack.enter_context(Recommender(settings, use_llm=use_llm))
            app.state.engine = Engine(rec)
            yield

    app = FastAPI(
        title="recpilot",
        version="1",
        summary="An LLM-controlled recommender: recommend, chat, profiles, feedback, traces.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(openai_compat.router)

    @app.get("/v1/health", tags=["ops"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/v1/ready", response_model=ReadyOut, tags=["ops"])
    async def ready(request: Request) -> JSONResponse:
        """Readiness: the LLM endpoint, Chroma and the stores answer (503 if one does not)."""
        result = await run_in_threadpool(readiness, request.app.state.engine)
        return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)

    web = files("recpilot.service") / "web"
    app.mount("/web", StaticFiles(directory=str(web), html=True), name="web")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/web/")

    return app
