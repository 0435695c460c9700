"""A stand-in OpenAI-compatible LLM server for unit tests: a real HTTP process, no model.

``python tests/unit/standin_llm.py --port P --delay S`` answers ``POST
/v1/chat/completions`` after ``S`` seconds with ``{}`` as the message content (schema-valid
for nothing recpilot asks, so LLM stages fall back, marked) and ``GET /v1/models``. It
serves one request at a time, like llama-cpp-python's server, and counts requests at
``GET /stats``. Tests start it with :func:`start_standin` and kill it to simulate a crash.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

BUSY = threading.Lock()
STATS = {"started": 0, "finished": 0}


class Handler(BaseHTTPRequestHandler):
    delay_s = 0.0

    def log_message(self, *args):  # quiet
        pass

    def _send(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path.endswith("/models"):
            self._send({"object": "list", "data": [{"id": "standin", "object": "model"}]})
        elif self.path == "/stats":
            self._send(STATS)
        else:
            self._send({"error": "not found"}, 404)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        STATS["started"] += 1
        with BUSY:  # one completion at a time, like the embedded server
            time.sleep(self.delay_s)
        STATS["finished"] += 1
        self._send(
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "standin",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "{}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
            }
        )


def start_standin(port: int, delay_s: float) -> subprocess.Popen:
    """Start the stand-in on 127.0.0.1:``port``; returns the process once it answers."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__)), "--port", str(port), "--delay", str(delay_s)]
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the stand-in LLM did not start")


def stats(port: int) -> dict:
    """The stand-in's request counts."""
    return httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    a = ap.parse_args()
    Handler.delay_s = a.delay
    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()
