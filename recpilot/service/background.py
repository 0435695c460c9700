"""Run the service in a background thread of this process (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from recpilot.config.settings import Settings
from recpilot.service.app import create_app


@contextlib.contextmanager
def serve_in_thread(
    settings: Settings, use_llm: bool = True, start_timeout_s: float = 300
) -> Iterator[str]:
    """The real service (uvicorn) on 127.0.0.1 and a free port; yields its base URL.

    Args:
        settings: the service's settings (``api_keys`` etc.).
        use_llm: False serves without an LLM.
        start_timeout_s: seconds to wait for startup (the embedded LLM takes a few).

    Raises:
        RuntimeError: the server did not start (its error is in the log).
    """
    app = create_app(settings, use_llm=use_llm)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="recpilot-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the service did not start; see the log above")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    httpx.get(f"{url}/v1/health", timeout=10).raise_for_status()
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)
