"""``recpilot serve``: run the HTTP service (FastAPI on uvicorn)."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

WORKER_START_S = 120
"""Seconds a worker process may take to start answering before uvicorn replaces it."""


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address (RECPILOT_SERVICE_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (RECPILOT_SERVICE_PORT).")
    ] = None,
    api_key: Annotated[
        list[str] | None, typer.Option(help="Accepted API key (repeatable; RECPILOT_API_KEYS).")
    ] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Serve without any LLM.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (RECPILOT_SERVICE_WORKERS); > 1 needs PostgreSQL "
            "(RECPILOT_DATABASE_URL) and a Chroma server (RECPILOT_CHROMA_HOST).",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API, the OpenAI-compatible chat endpoint and the web page."""
    import uvicorn

    from recpilot.cli.main import clean_errors, err_console, open_recommender, settings_from
    from recpilot.llm.server import for_serving
    from recpilot.service.app import check_workers, create_app

    flags: dict[str, object] = {
        "service_host": host,
        "service_port": port,
        "service_workers": workers,
    }
    if api_key:
        flags["api_keys"] = api_key
    settings = for_serving(settings_from(ctx, **flags))  # LLM-off requests take the CPU first
    with clean_errors():
        check_workers(settings)  # refused before anything starts
    if not settings.api_keys and not settings.user_api_keys:
        key = secrets.token_urlsafe(18)
        settings = settings.model_copy(update={"api_keys": [key]})
        err_console.print(f"no API key configured; this run accepts: [bold]{key}[/]")
    if settings.service_workers > 1:
        serve_workers(settings, use_llm=not no_llm)
        return
    with clean_errors(), open_recommender(settings, not no_llm) as rec:
        app = create_app(settings, use_llm=not no_llm, recommender=rec)
        url = f"http://{settings.service_host}:{settings.service_port}"
        err_console.print(f"serving on {url} — web page {url}/web/, API docs {url}/docs")
        uvicorn.run(app, host=settings.service_host, port=settings.service_port, log_level="info")


def serve_workers(settings: object, use_llm: bool) -> None:
    """Run ``settings.service_workers`` uvicorn worker processes over one LLM server.

    Without ``llm_base_url`` the embedded LLM is started here, once, and every worker
    gets its URL (each worker's limiter lets one call through, so at most N calls reach
    the single-slot server at once). State is shared through PostgreSQL and the Chroma
    server (checked by ``check_workers``).
    """
    import contextlib
    import os

    import uvicorn

    from recpilot.cli.main import clean_errors, err_console, open_recommender
    from recpilot.config.settings import Settings
    from recpilot.llm.server import embedded_client_settings, resolve_llm
    from recpilot.service.app import SETTINGS_ENV, USE_LLM_ENV

    assert isinstance(settings, Settings)
    # Everything a worker opens (dataset, models, PostgreSQL, the Chroma server) is
    # opened once here first: a worker that fails at start only logs a traceback.
    with clean_errors(), open_recommender(settings, use_llm=False):
        pass
    with clean_errors(), contextlib.ExitStack() as stack:
        child = settings
        if use_llm and not settings.llm_base_url:
            with err_console.status("starting the embedded LLM …"):
                url = stack.enter_context(resolve_llm(settings))
            child = settings.model_copy(update=embedded_client_settings(url))
        os.environ[SETTINGS_ENV] = child.model_dump_json()
        os.environ[USE_LLM_ENV] = "1" if use_llm else "0"
        url = f"http://{settings.service_host}:{settings.service_port}"
        err_console.print(
            f"serving on {url} with {settings.service_workers} workers — web page {url}/web/"
        )
        uvicorn.run(
            "recpilot.service.app:app_from_env",
            factory=True,
            host=settings.service_host,
            port=settings.service_port,
            workers=settings.service_workers,
            log_level="info",
            # a worker loads the catalogue, models and index before it answers; uvicorn's
            # default 5 s health check killed slow starters on a busy 2-core machine
            timeout_worker_healthcheck=WORKER_START_S,
        )
