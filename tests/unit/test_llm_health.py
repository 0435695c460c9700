"""A dead or misconfigured LLM is never silent: readiness, death detection, 401/404, bad URLs.

The embedded server is replaced by a stand-in child process (a tiny OpenAI-compatible
HTTP server) that can kill itself with a real signal on its Nth completion.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from recpilot.cli.main import app
from recpilot.config.settings import Settings
from recpilot.llm import server as llm_server
from recpilot.llm.client import LLMClient, LLMConfigError, LLMError
from recpilot.llm.server import EmbeddedLLMServer, LLMSetupError, death_report, exit_cause

MSGS = [{"role": "user", "content": "hi"}]
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}

STAND_IN = textwrap.dedent(
    """
    import json, os, signal, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    port, die_on, sig = int(sys.argv[1]), int(sys.argv[2]), getattr(signal, sys.argv[3])
    done = 0
    class H(BaseHTTPRequestHandler):
        def _send(self, obj):
            out = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        def do_GET(self):
            self._send({"object": "list", "data": [{"id": "m", "object": "model"}]})
        def do_POST(self):
            global done
            self.rfile.read(int(self.headers["content-length"]))
            done += 1
            if done == die_on:
                if sig != signal.SIGKILL:
                    signal.signal(sig, signal.SIG_DFL)
                os.kill(os.getpid(), sig)
            msg = {"role": "assistant", "content": '{"ok": true}'}
            self._send({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop", "message": msg}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                  "total_tokens": 5}})
        def log_message(self, *a):
            pass
    print("stand-in server up", flush=True)
    HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """Make EmbeddedLLMServer run the stand-in; returns a setter for (die_on, signal)."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    plan = {"die_on": 0, "sig": "SIGILL"}

    def command(self, gguf):
        return [sys.executable, str(script), str(self.port), str(plan["die_on"]), plan["sig"]]

    monkeypatch.setattr(EmbeddedLLMServer, "command", command)
    monkeypatch.setattr(llm_server.importlib.util, "find_spec", lambda name: object())
    return plan


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path, embedded_start_timeout_s=20, llm_retries=1, _env_file=None)


def test_exit_cause_names_the_signal():
    assert exit_cause(-4) == "signal SIGILL, illegal instruction"
    assert exit_cause(-9).startswith("signal SIGKILL")
    assert exit_cause(3) == "exit code 3"


def test_readiness_needs_a_completion_not_just_the_models_endpoint(settings, stand_in):
    stand_in["die_on"] = 1  # answers GET /v1/models, dies on the first completion
    server = EmbeddedLLMServer(settings, gguf_path=Path("/m.gguf"))
    with pytest.raises(LLMSetupError) as info:
        server.start()
    text = str(info.value)
    assert "embedded LLM server died (signal SIGILL, illegal instruction)" in text
    assert "fix:" in text and "recpilot llm build" in text
    assert str(server.log_path) in text
    assert not server.running


def test_a_server_that_dies_mid_run_is_reported_as_dead(settings, stand_in):
    stand_in["die_on"] = 2  # the readiness completion works, the next one kills it
    with EmbeddedLLMServer(settings, gguf_path=Path("/m.gguf")) as server:
        client = LLMClient.from_settings(settings, server.base_url)
        with pytest.raises(LLMError) as info:
            client.json(MSGS, SCHEMA, "plan", 10)
        assert info.value.unreachable
        assert str(info.value).startswith(
            "embedded LLM server died (signal SIGILL, illegal instruction); log "
        )
        assert client.calls[-1].error == str(info.value)
        assert death_report(server.base_url) == str(info.value)
    assert death_report(server.base_url) is None  # stopped servers are forgotten


def test_a_killed_server_says_killed(settings, stand_in):
    stand_in.update(die_on=2, sig="SIGKILL")
    with EmbeddedLLMServer(settings, gguf_path=Path("/m.gguf")) as server:
        client = LLMClient.from_settings(settings, server.base_url)
        with pytest.raises(LLMError, match=r"died \(signal SIGKILL"):
            client.json(MSGS, SCHEMA, "plan", 10)


def test_a_live_server_has_no_death_report(settings, stand_in):
    with EmbeddedLLMServer(settings, gguf_path=Path("/m.gguf")) as server:
        client = LLMClient.from_settings(settings, server.base_url)
        assert client.json(MSGS, SCHEMA, "plan", 10) == {"ok": True}
        assert server.death_message() is None


# -- hosted endpoints: 401 / 404 are misconfigurations, 5xx is transient -------------------


class _Status(BaseHTTPRequestHandler):
    status = 401

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["content-length"]))
        out = json.dumps({"error": {"message": "nope", "type": "x"}}).encode()
        self.send_response(_Status.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


@pytest.mark.parametrize(
    ("status", "needle"),
    [(401, "refused the API key (HTTP 401); fix: set RECPILOT_LLM_API_KEY"),
     (404, "does not serve model 'gpt-x' (HTTP 404); fix: set RECPILOT_LLM_MODEL")],
)  # fmt: skip
def test_bad_key_or_unknown_model_is_refused_at_connect(tmp_path, status_url, status, needle):
    _Status.status = status
    settings = Settings(home=tmp_path, llm_base_url=status_url, llm_model="gpt-x", _env_file=None)
    with pytest.raises(LLMConfigError) as info:
        LLMClient.connect(settings, status_url)
    assert needle in str(info.value)


def test_a_transient_fault_at_connect_is_not_a_refusal(tmp_path, status_url):
    _Status.status = 500
    settings = Settings(home=tmp_path, llm_base_url=status_url, llm_retries=0, _env_file=None)
    client = LLMClient.connect(settings, status_url)  # warns, does not raise
    assert not client.calls
    with pytest.raises(LLMError) as info:
        client.json(MSGS, SCHEMA, "plan", 10)
    assert not isinstance(info.value, LLMConfigError) and info.value.unreachable


def test_cli_exits_2_on_a_bad_key(tmp_path, status_url, monkeypatch):
    _Status.status = 401
    monkeypatch.setenv("RECPILOT_LLM_BASE_URL", status_url)
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "llm", "check"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "HTTP 401" in lines[0]


# -- URLs and modes refused when the command starts -----------------------------------------


@pytest.mark.parametrize("field", ["llm_base_url", "embedding_base_url"])
def test_base_url_without_scheme_is_refused_with_the_fix(tmp_path, field):
    with pytest.raises(ValidationError) as info:
        Settings(home=tmp_path, _env_file=None, **{field: "localhost:8000"})
    env = f"RECPILOT_{field.upper()}"
    assert f"fix: {env}=http://localhost:8000/v1" in str(info.value)


def test_base_url_is_kept_and_an_empty_one_is_unset(tmp_path):
    s = Settings(home=tmp_path, llm_base_url="https://api.example.com/v1/", _env_file=None)
    assert s.llm_base_url == "https://api.example.com/v1"
    assert Settings(home=tmp_path, llm_base_url="", _env_file=None).llm_base_url is None


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [("RECPILOT_LLM_BASE_URL", "localhost:8000", "http://localhost:8000/v1"),
     ("RECPILOT_EMBEDDING_BASE_URL", "example.com/v1", "http://example.com/v1"),
     ("RECPILOT_LLM_JSON_MODE", "jsonish", "'json_schema'")],
)  # fmt: skip
def test_cli_refuses_misconfiguration_with_one_error_line(tmp_path, monkeypatch, env, value,
                                                          needle):  # fmt: skip
    monkeypatch.setenv(env, value)
    for argv in (["recommend", "--user", "1"], ["llm", "check"], ["serve"]):
        result = CliRunner().invoke(app, ["--home", str(tmp_path), *argv])
        assert result.exit_code == 2, (argv, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (argv, result.output)
        assert needle in lines[0]


@pytest.mark.parametrize(("status", "needle"), [(401, "RECPILOT_EMBEDDING_API_KEY"),
                                                (404, "RECPILOT_EMBEDDING_MODEL")])
def test_embedding_endpoint_misconfiguration_names_the_setting(status_url, status, needle):
    from recpilot.data.embeddings import OpenAIEmbedder

    _Status.status = status
    embedder = OpenAIEmbedder(status_url, "emb-x", max_retries=0)
    with pytest.raises(ValueError, match=needle):
        embedder.encode(["a"])


class _LlamaLike(BaseHTTPRequestHandler):
    """Answers like llama-cpp-python's server: OpenAI's json_schema form is an HTTP 500."""

    forms: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        form = (body.get("response_format") or {}).get("type", "text")
        _LlamaLike.forms.append(form)
        if form == "json_schema":
            text = "1 validation error: Input should be 'text' or 'json_object'"
            status, out = 500, {"error": {"message": text, "type": "internal_server_error"}}
        else:
            msg = {"role": "assistant", "content": '{"ok": true}'}
            status, out = 200, {"id": "x", "object": "chat.completion", "created": 0,
                                "model": "m", "choices": [{"index": 0, "message": msg,
                                                           "finish_reason": "stop"}]}  # fmt: skip
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_auto_json_mode_adapts_to_a_llama_server_behind_a_base_url(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _LlamaLike)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        settings = Settings(home=tmp_path, llm_base_url=url, llm_retries=0, _env_file=None)
        client = LLMClient.from_settings(settings, url)
        assert client.json_mode == "json_schema"
        assert client.json(MSGS, SCHEMA, "plan", 10) == {"ok": True}
        assert client.json_mode == "json_object_schema"
        assert client.json(MSGS, SCHEMA, "plan", 10) == {"ok": True}
        assert _LlamaLike.forms == ["json_schema", "json_object", "json_object"]
        fixed = Settings(home=tmp_path, llm_base_url=url, llm_retries=0,
                         llm_json_mode="json_schema", _env_file=None)  # fmt: skip
        with pytest.raises(LLMError):  # an explicit mode is kept, not overridden
            LLMClient.from_settings(fixed, url).json(MSGS, SCHEMA, "plan", 10)
    finally:
        server.shutdown()


def test_other_llama_servers_are_found_by_their_command_line(tmp_path):
    """`llm check` names other llama.cpp servers sharing the CPU (they lower its figures)."""
    for pid, cmd in {"41": b"python\0-m\0llama_cpp.server\0--model\0x.gguf\0",
                     "42": b"python\0-m\0recpilot.cli\0serve\0",
                     "7": b"/work/.venv/bin/python\0-m\0llama_cpp.server\0"}.items():  # fmt: skip
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(cmd)
    (tmp_path / "self").mkdir()  # not a pid
    assert llm_server.other_llama_servers(tmp_path) == [7, 41]
    assert llm_server.other_llama_servers(tmp_path / "missing") == []


def test_the_server_child_runs_below_the_callers_cpu_priority():
    """What ``EmbeddedLLMServer.start`` runs in the child before exec: the child asks for
    SIGKILL with its parent and lowers its priority by ``embedded_nice``."""
    import functools
    import subprocess
    import sys

    from recpilot.llm.server import _child_setup

    def child_nice(nice: int) -> int:
        out = subprocess.run(
            [sys.executable, "-c", "import os; print(os.nice(0))"], capture_output=True,
            text=True, check=True, preexec_fn=functools.partial(_child_setup, nice),
        )  # fmt: skip
        return int(out.stdout)

    mine = os.nice(0)
    assert child_nice(10) == min(19, mine + 10)
    assert child_nice(0) == mine


def test_llm_check_runs_its_server_at_the_callers_priority(tmp_path, monkeypatch):
    """`llm check` measures the LLM itself: a server niced below other jobs on a busy
    machine measured them instead (and ran past `timeout`)."""
    from recpilot.cli import llm as llm_cli

    seen: list[int] = []

    class Recording(EmbeddedLLMServer):
        def __enter__(self):
            seen.append(self.settings.embedded_nice)
            raise LLMSetupError("stopped by the test")

    monkeypatch.setattr(llm_cli, "EmbeddedLLMServer", Recording)
    monkeypatch.delenv("RECPILOT_LLM_BASE_URL", raising=False)
    out = CliRunner().invoke(app, ["--home", str(tmp_path), "llm", "check"])
    assert seen == [0] and out.exit_code != 0 and "stopped by the test" in out.output
