"""`recpilot serve --workers N`: refused at start without shared state; bench helpers."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from recpilot.cli.main import app
from recpilot.evals.bench_scale import overlapping, percentile, tree_rss_mb

runner = CliRunner()


def test_workers_with_sqlite_and_a_local_chroma_are_refused_with_the_fix(tmp_path, monkeypatch):
    for var in ("RECPILOT_DATABASE_URL", "RECPILOT_CHROMA_HOST", "RECPILOT_STORE_URL"):
        monkeypatch.delenv(var, raising=False)
    out = runner.invoke(app, ["--home", str(tmp_path), "serve", "--workers", "2", "--no-llm"])
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert text.startswith("error:") and "Traceback" not in text
    assert "RECPILOT_DATABASE_URL=postgresql://" in text and "RECPILOT_CHROMA_HOST" in text
    assert "--workers 1" in text


def test_workers_with_postgres_but_no_chroma_server_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RECPILOT_DATABASE_URL", "postgresql://u:p@127.0.0.1:1/db")
    monkeypatch.delenv("RECPILOT_CHROMA_HOST", raising=False)
    out = runner.invoke(app, ["--home", str(tmp_path), "serve", "--workers", "3", "--no-llm"])
    text = " ".join(out.output.split())
    assert out.exit_code == 2 and "RECPILOT_CHROMA_HOST" in text
    assert "RECPILOT_DATABASE_URL=" not in text  # only what is missing is named


def test_workers_with_unreachable_servers_exit_with_one_error_line(tiny_settings, monkeypatch):
    from recpilot.llm.server import free_port

    home = str(tiny_settings.home)
    monkeypatch.setenv("RECPILOT_DATABASE_URL", f"postgresql://u:p@127.0.0.1:{free_port()}/db")
    monkeypatch.setenv("RECPILOT_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("RECPILOT_CHROMA_PORT", str(free_port()))
    args = ["--home", home, "--dataset", "tiny", "serve", "--workers", "2", "--no-llm"]
    out = runner.invoke(app, args)  # checked in the parent, before any worker starts
    text = " ".join(out.output.split())
    assert out.exit_code == 1 and "Traceback" not in text
    assert text.count("error:") == 1 and "cannot reach the Chroma server" in text
    assert "chroma run" in text and "RECPILOT_CHROMA_PORT" in text


def test_a_database_url_that_is_not_postgres_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RECPILOT_DATABASE_URL", "sqlite:///x.db")
    out = runner.invoke(app, ["--home", str(tmp_path), "serve", "--no-llm"])
    assert out.exit_code == 2 and "not a PostgreSQL URL" in " ".join(out.output.split())
    monkeypatch.setenv("RECPILOT_DATABASE_URL", "mysql://app:s3cret@db:3306/x")
    out = runner.invoke(app, ["--home", str(tmp_path), "serve", "--no-llm"])
    text = " ".join(out.output.split())
    assert out.exit_code == 2 and "mysql://app:***@db:3306/x" in text and "s3cret" not in text


def test_one_postgres_url_test_and_password_redaction():
    from recpilot.config.db_urls import is_postgres_url, redact_url
    from recpilot.config.settings import Settings
    from recpilot.stores.locks import KeyedLocks, locks_for
    from recpilot.stores.profiles import store_backend

    assert is_postgres_url("postgresql://h/db") and is_postgres_url("postgres://h/db")
    assert not is_postgres_url("postgresqlx://h/db") and not is_postgres_url(None)
    assert redact_url("postgresql://u:p@ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert type(locks_for("postgresqlx://h/db")) is KeyedLocks  # not a PostgreSQL URL
    pg = Settings(store_url="postgres://u:p@h/db", _env_file=None)
    assert store_backend(pg) == ("postgres", "postgres://u:p@h/db")


def test_bench_helpers_overlap_percentile_and_rss():
    turns = [{"start": 10.0, "end": 20.0, "llm_calls": 2}, {"start": 30.0, "end": 31.0,
                                                            "llm_calls": 0}]
    samples = [(11.0, 12.0, 5.0), (19.5, 20.5, 7.0), (30.1, 30.2, 9.0), (15.0, 16.0, 3.0)]
    assert overlapping(samples, turns) == [5.0, 3.0]  # inside an LLM turn only
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([], 95) == 0.0
    assert tree_rss_mb(os.getpid()) > 10


def test_paced_load_keeps_its_schedule_and_counts_a_stall_from_the_scheduled_time():
    """Open loop: 20 requests/s for 1 s are 20 requests whatever the server does, and a
    server that answers the first request late charges that wait to it (measured from the
    scheduled send time, so a slow answer is never hidden)."""
    import json as _json
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from recpilot.evals.bench_scale import paced_load

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = _json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body["user_id"])
            time.sleep(0.4 if len(seen) == 1 else 0.01)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        out = paced_load(url, "k", ["1", "2"], rate=20, seconds=1, k=5)
    finally:
        server.shutdown()
    assert out["requests"] == 20 and out["errors"] == 0 and len(seen) == 20
    assert out["max_ms"] >= 400  # the stalled first request
    assert 10 <= out["p50_ms"] < 400  # the others were not held behind it


def test_the_embedded_clients_settings_are_the_same_as_fields_and_as_environment(monkeypatch):
    from recpilot.config.settings import Settings
    from recpilot.llm.server import embedded_client_settings, settings_env

    fields = embedded_client_settings("http://127.0.0.1:9/v1")
    assert Settings(_env_file=None).model_copy(update=fields).llm_max_in_flight == 1
    for name, value in settings_env(fields).items():  # what bench_scale passes to workers
        monkeypatch.setenv(name, value)
    s = Settings(_env_file=None)
    assert (s.llm_base_url, s.llm_json_mode, s.llm_max_in_flight) == (
        "http://127.0.0.1:9/v1", "json_object_schema", 1,
    )


def test_cpu_share_sees_a_busy_child_and_the_machine():
    import subprocess
    import sys
    import time

    from recpilot.evals.bench_scale import cpu_share

    spin = "import time\nt = time.time()\nwhile time.time() - t < 3: pass"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    try:
        with cpu_share(busy.pid) as cpu:
            time.sleep(1.0)
    finally:
        busy.kill()
        busy.wait()
    assert 0.5 <= cpu["server_cores"] <= 1.05  # one spinning core (a shared core gives less)
    assert cpu["machine_busy"] >= 0.2  # at least that share of the machine's cores


def test_serve_runs_the_embedded_llm_below_its_requests_priority_unless_told(tmp_path, monkeypatch):
    import contextlib

    from recpilot.cli import main as cli_main

    seen: list[int | None] = []

    @contextlib.contextmanager
    def recording(settings, use_llm):
        seen.append(settings.embedded_nice)
        raise FileNotFoundError("stopped by the test")
        yield  # pragma: no cover

    monkeypatch.setattr(cli_main, "open_recommender", recording)
    for var in ("RECPILOT_DATABASE_URL", "RECPILOT_CHROMA_HOST", "RECPILOT_EMBEDDED_NICE"):
        monkeypatch.delenv(var, raising=False)
    runner.invoke(app, ["--home", str(tmp_path), "serve", "--api-key", "k"])
    monkeypatch.setenv("RECPILOT_EMBEDDED_NICE", "3")
    runner.invoke(app, ["--home", str(tmp_path), "serve", "--api-key", "k"])
    assert seen == [10, 3]
