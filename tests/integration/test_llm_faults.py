"""The real embedded LLM killed mid-request: the request is answered (fallback marked),
and the service uses the LLM again once a server is back — no service restart.

Run it under the LLM lock:
``flock /tmp/recpilot-llm.lock pytest -q tests/integration/test_llm_faults.py``.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from recpilot.config.settings import Settings
from recpilot.llm.server import EmbeddedLLMServer
from recpilot.service.background import serve_in_thread

KEY = "llm-fault-key"


def test_killing_the_embedded_llm_mid_request_falls_back_and_recovers(
    ml100k_home, shared_gguf, tmp_path
):
    llm_settings = Settings(home=tmp_path / "llm", _env_file=None)
    server = EmbeddedLLMServer(llm_settings, gguf_path=shared_gguf).start()
    port = server.port
    settings = Settings(
        home=ml100k_home, llm_base_url=server.base_url, llm_json_mode="json_object_schema",
        llm_max_in_flight=1, llm_retries=0, llm_timeout_s=120, planner="rules",
        api_keys=[KEY], _env_file=None,
    )  # fmt: skip
    body = {"user_id": "196", "message": "a funny film for tonight", "k": 5,
            "fine_mode": "listwise"}  # fmt: skip
    try:
        with serve_in_thread(settings, use_llm=True) as url, httpx.Client(
            base_url=url, headers={"X-API-Key": KEY}, timeout=300
        ) as c, ThreadPoolExecutor(1) as pool:
            turn = pool.submit(c.post, "/v1/recommend", json=body)
            deadline = time.monotonic() + 120
            while c.get("/v1/ready").json()["llm_queue"]["in_flight"] < 1:
                assert time.monotonic() < deadline, "no LLM call got in flight"
                time.sleep(0.05)
            time.sleep(0.5)  # inside the completion
            server._proc.send_signal(signal.SIGKILL)  # the LLM dies mid-request
            r = turn.result()
            assert r.status_code == 200, r.text
            out = r.json()
            assert len(out["items"]) == 5 and out["llm"]["failed"] >= 1 and out["fallbacks"]
            # an LLM-off request meanwhile: unaffected
            off = c.post("/v1/recommend", json={"user_id": "196", "k": 5, "fine_mode": "off"})
            assert off.status_code == 200 and off.json()["llm"]["calls"] == 0
            # a server back on the same port: the running service uses it again
            server = EmbeddedLLMServer(
                llm_settings.model_copy(update={"embedded_port": port}), gguf_path=shared_gguf
            ).start()
            again = c.post("/v1/recommend", json=body).json()
            assert again["llm"]["calls"] >= 1 and again["llm"]["failed"] == 0, again["fallbacks"]
    finally:
        server.stop()
