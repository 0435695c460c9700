"""The real servers of the scale-out tests: PostgreSQL and a Chroma server on loopback.

``.ci/run`` starts both (``.ci/servers start``) and exports ``RECPILOT_TEST_DATABASE_URL``
and ``RECPILOT_TEST_CHROMA`` (``host:port``). Without them the tests skip with the
reason locally — but with ``CI=true`` they FAIL: CI never skips them silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HOW = "start them with: eval \"$(.ci/servers start)\" (as root; see .ci/servers)"


def unavailable(message: str) -> None:
    """An outside requirement of a test (a server, a browser) is missing: skip with
    ``message`` locally, but FAIL under ``CI=true`` — CI never skips a test silently."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def need(var: str) -> str:
    """The value of ``var``, or skip (locally) / fail (CI) with how to start the servers."""
    value = os.environ.get(var)
    if value:
        return value
    unavailable(f"{var} is not set: the PostgreSQL and Chroma servers are not running; {HOW}")
    raise AssertionError("unreachable")  # unavailable() always raises


def database_url() -> str:
    """``RECPILOT_TEST_DATABASE_URL``, checked to answer (fails with the reason if not)."""
    url = need("RECPILOT_TEST_DATABASE_URL")
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        pytest.fail(f"PostgreSQL at {url} does not answer: {err}; {HOW}")
    return url


def chroma_address() -> tuple[str, int]:
    """``RECPILOT_TEST_CHROMA`` as ``(host, port)``, checked to answer."""
    host, _, port = need("RECPILOT_TEST_CHROMA").rpartition(":")
    if not chroma_alive(host, int(port)):
        pytest.fail(f"the Chroma server at {host}:{port} does not answer; {HOW}")
    return host, int(port)


def chroma_alive(host: str, port: int) -> bool:
    """True when the Chroma server's heartbeat answers."""
    try:
        return httpx.get(f"http://{host}:{port}/api/v2/heartbeat", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_chroma(path: Path, port: int) -> subprocess.Popen:
    """A Chroma server of the chromadb package (``chroma run``) on 127.0.0.1:``port``."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    log = open(path.parent / f"chroma-{port}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while not chroma_alive("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the Chroma server did not start on port {port}; see {log.name}")
        time.sleep(0.3)
    return proc


def restart_postgres() -> float:
    """Restart the CI PostgreSQL (``pg_ctl restart -m fast``); returns seconds it took."""
    pgdata, pgbin = need("RECPILOT_TEST_PGDATA"), need("RECPILOT_TEST_PG_BIN")
    log = Path(pgdata).parent / "pg.log"  # the server's output: never our pipe (it stays open)
    cmd = [f"{pgbin}/pg_ctl", "-D", pgdata, "-l", str(log), "-m", "fast", "-w", "restart"]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    started = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    assert out.returncode == 0, f"pg_ctl restart failed; see {log}"
    return time.perf_counter() - started
