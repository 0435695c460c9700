"""``recpilot serve``: run the HTTP service (FastAPI on uvicorn)."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer


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
) -> None:
    """Serve the HTTP API, the OpenAI-compatible chat endpoint and the web page."""
    import uvicorn

    from recpilot.cli.main import clean_errors, err_console, open_recommender, settings_from
    from recpilot.service.app import create_app

    flags: dict[str, object] = {"service_host": host, "service_port": port}
    if api_key:
        flags["api_keys"] = api_key
    settings = settings_from(ctx, **flags)
    if not settings.api_keys:
        key = secrets.token_urlsafe(18)
        settings = settings.model_copy(update={"api_keys": [key]})
        err_console.print(f"no API key configured; this run accepts: [bold]{key}[/]")
    with clean_errors(), open_recommender(settings, not no_llm) as rec:
        app = create_app(settings, use_llm=not no_llm, recommender=rec)
        url = f"http://{settings.service_host}:{settings.service_port}"
        err_console.print(f"serving on {url} — web page {url}/web/, API docs {url}/docs")
        uvicorn.run(app, host=settings.service_host, port=settings.service_port, log_level="info")
