"""The FastAPI app: lifespan (one Recommender), middleware, error handlers, health, web page.

``create_app(settings)`` builds it; ``recpilot serve`` runs it with uvicorn. Endpoints
under ``/v1`` need an API key (see :mod:`recpilot.service.auth`); ``/v1/health``,
``/v1/ready``, the OpenAPI docs (``/docs``, ``/openapi.json``) and the web page (``/web/``)
do not. Every error is JSON ``{"error": "..."}``; no traceback reaches a client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from recpilot.agent.runner import Recommender, ThreadOfAnotherUserError
from recpilot.config.settings import Settings
from recpilot.llm.errors import LLMBusyError
from recpilot.service import openai_compat, routes
from recpilot.service.auth import BodyLimitMiddleware
from recpilot.service.engine import Engine
from recpilot.service.schemas import ReadyOut
from recpilot.stores.checkpoints import ping_checkpointer
from recpilot.stores.postgres import PostgresUnavailableError, close_pools, is_postgres_url
from recpilot.stores.profiles import StoreUnavailableError

log = logging.getLogger("recpilot.service")
STORE_RETRY_AFTER_S = 2  # Retry-After when a database is down (a restart takes seconds)


SQLITE_TRANSIENT = {5, 6, 10}  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR (primary codes)


def sqlite_transient(err: sqlite3.OperationalError) -> bool:
    """True when a SQLite error is worth a retry: busy, locked or a disk I/O error (its
    result code, https://www.sqlite.org/rescode.html, masked to the primary code). A
    missing table or a bad statement is a bug or a damaged file, not an outage."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in SQLITE_TRANSIENT
    text = str(err).lower()
    return "locked" in text or "busy" in text or "disk i/o error" in text


def store_error_types() -> list[type[Exception]]:
    """Exceptions meaning "a database is unreachable right now" (answered 503, not 500):
    psycopg's OperationalError and the pool's timeout, when the PostgreSQL driver is
    installed. (SQLite's OperationalError is 503 only when :func:`sqlite_transient`.)"""
    types: list[type[Exception]] = [PostgresUnavailableError]
    try:
        import psycopg
        import psycopg_pool

        types += [psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout]
    except ImportError:
        pass
    return types


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

    @app.exception_handler(LLMBusyError)
    async def busy(request: Request, exc: LLMBusyError) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc)},
            status_code=503,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    @app.exception_handler(StoreUnavailableError)
    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"error": f"a store is unavailable ({type(exc).__name__}); retry shortly"},
            status_code=503,
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )

    for exc_type in store_error_types():
        app.add_exception_handler(exc_type, store_down)  # type: ignore[arg-type]

    @app.exception_handler(ThreadOfAnotherUserError)
    async def not_yours(request: Request, exc: ThreadOfAnotherUserError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403)

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

    @app.exception_handler(sqlite3.OperationalError)
    async def sqlite_error(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        if sqlite_transient(exc):  # locked, busy, disk I/O: retry shortly
            return await store_down(request, exc)
        return await unexpected(request, exc)  # e.g. "no such table": a 500, logged


def readiness(engine: Engine) -> ReadyOut:
    """Check the LLM endpoint, Chroma and the stores, all at once (blocking).

    The checks run in parallel threads, so a dead backend costs its own timeout once
    (a PostgreSQL pool waits up to 10 s) instead of once per store that uses it.
    """
    svc = engine.rec.services
    assert svc is not None
    llm = svc.llm

    def check_llm() -> str:
        if llm is None:
            return "off"
        return "ok" if llm.ping(timeout_s=3) else f"unreachable: {llm.base_url}"

    def check_chroma() -> str:
        return "ok" if svc.index.count() > 0 else "empty index"

    def ok(ping: Callable[[], object]) -> Callable[[], str]:
        """``ping`` as a check: "ok" when it returns, its exception otherwise."""

        def check() -> str:
            ping()
            return "ok"

        return check

    checks_to_run: dict[str, Callable[[], str]] = {
        "llm": check_llm,
        "chroma": check_chroma,
        "traces": ok(engine.traces.ping),
        "feedback": ok(engine.feedback.ping),
        "checkpoints": ok(lambda: ping_checkpointer(engine.rec.checkpointer)),
    }
    checks: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=len(checks_to_run)) as pool:
        futures = {name: pool.submit(fn) for name, fn in checks_to_run.items()}
        for name, future in futures.items():
            try:
                checks[name] = future.result()
            except Exception as err:  # any failure of a backend means not ready
                checks[name] = f"error: {err}"
    ready = all(v in ("ok", "off") for v in checks.values())
    queue = llm.limiter.stats() if llm is not None else None
    return ReadyOut(ready=ready, checks=checks, llm_queue=queue)


def create_app(
    settings: Settings, use_llm: bool = True, recommender: Recommender | None = None
) -> FastAPI:
    """Build the app.

    Args:
        settings: configuration (``api_keys``, ``max_request_bytes``, data directory, LLM).
        use_llm: False serves without any LLM (rules plan, coarse order).
        recommender: an already entered Recommender to serve (the caller closes it and
            its PostgreSQL pools); None: one is opened at startup and closed at shutdown,
            then the process's PostgreSQL pools (``stores.postgres.close_pools``). The
            keyed locks' pools are closed at shutdown either way.

    Returns:
        The FastAPI app.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.ExitStack() as stack:
            if recommender is None:  # ours: at shutdown close it, then the process's pools
                stack.callback(close_pools)  # PostgreSQL pools of the stores (after rec)
            rec = recommender or stack.enter_context(Recommender(settings, use_llm=use_llm))
            engine = Engine(rec)
            stack.callback(engine.locks.close)  # the lock pools (reopened on next use)
            app.state.engine = engine
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
        """Liveness: the process answers (``worker``: its process id, one per worker)."""
        return {"status": "ok", "worker": str(os.getpid())}

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


SETTINGS_ENV = "RECPILOT_SERVE_SETTINGS_JSON"  # set by `recpilot serve --workers N`
USE_LLM_ENV = "RECPILOT_SERVE_USE_LLM"


def check_workers(settings: Settings) -> None:
    """Refuse a multi-worker configuration whose state is not shared.

    With ``service_workers`` > 1 every worker process has its own memory, so the chat
    checkpoints, profiles, traces and feedback must live in PostgreSQL and the item index
    in a Chroma server; SQLite files and a local Chroma folder are one process's.

    Raises:
        ValueError: workers > 1 without ``database_url`` (PostgreSQL) or ``chroma_host``;
            the message gives the fix.
    """
    if settings.service_workers <= 1:
        return
    missing = []
    if not is_postgres_url(settings.database_url):
        missing.append("RECPILOT_DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DB")
    if settings.store_url and not is_postgres_url(settings.store_url):
        missing.append("RECPILOT_STORE_URL unset (or a postgresql:// URL)")
    if not settings.chroma_host:
        missing.append("RECPILOT_CHROMA_HOST=HOST (and RECPILOT_CHROMA_PORT) of a Chroma server")
    if missing:
        raise ValueError(
            f"{settings.service_workers} workers need shared state (SQLite and a local Chroma "
            "folder are one process's); fix: set " + "; ".join(missing) + ", or use --workers 1"
        )


def app_from_env() -> FastAPI:
    """App factory for uvicorn's worker processes (``recpilot serve --workers N``).

    Reads the parent's settings from ``RECPILOT_SERVE_SETTINGS_JSON`` (JSON of
    :class:`Settings`; the LLM base URL points at the one LLM server the parent started,
    or the configured endpoint) and ``RECPILOT_SERVE_USE_LLM`` (``1``/``0``).

    Raises:
        KeyError: not started by ``recpilot serve`` (the variable is missing).
    """
    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]), _env_file=None)
    return create_app(settings, use_llm=os.environ.get(USE_LLM_ENV, "1") == "1")
