"""LLMClient (fake chat models and a stub HTTP backend) and the embedded-server setup."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fakes import fake_llm
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from recpilot.config.settings import Settings
from recpilot.llm import server as llm_server
from recpilot.llm.client import LLMClient, LLMError, parse_json, yes_no_probability
from recpilot.llm.server import (
    EmbeddedLLMServer,
    LLMSetupError,
    ensure_gguf,
    resolve_llm,
)

fake = partial(fake_llm, retries=2)  # these tests exercise the client's retries

SCHEMA = {
    "type": "object",
    "properties": {"pick": {"type": "string", "enum": ["a", "b"]}},
    "required": ["pick"],
}
MSGS = [{"role": "user", "content": "pick one"}]


def logprob_message(top: dict[str, float]) -> AIMessage:
    """An AIMessage shaped like ChatOpenAI's, with first-token top logprobs."""
    entries = [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()]
    first = max(top, key=top.__getitem__)
    content = [{"token": first, "logprob": top[first], "bytes": None, "top_logprobs": entries}]
    return AIMessage(content=first, response_metadata={"logprobs": {"content": content}})


class FlakyChat(BaseChatModel):
    """Raises ``error`` for the first ``failures`` calls, then answers ``answer``."""

    failures: int
    error: Exception
    answer: str = '{"pick": "a"}'
    attempts: int = 0

    @property
    def _llm_type(self) -> str:
        return "flaky"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.answer))])


def connection_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1"))


# -- json ----------------------------------------------------------------------------------


def test_json_valid_is_parsed_and_recorded():
    client = fake('{"pick": "b"}')
    assert client.json(MSGS, SCHEMA, purpose="test", max_tokens=20) == {"pick": "b"}
    (call,) = client.calls
    assert call.purpose == "test" and call.response == '{"pick": "b"}'
    assert call.error is None and call.retries == 0 and call.messages == MSGS
    client.reset_calls()
    assert not client.calls


def test_json_accepts_a_code_fence():
    assert fake('```json\n{"pick": "a"}\n```').json(MSGS, SCHEMA, "t", 20) == {"pick": "a"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("not json", "invalid JSON"),
        ('{"pick": "z"}', "violates the schema"),
        ("[1, 2", "JSON"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_json_invalid_output_raises_and_is_recorded(answer, message):
    client = fake(answer)
    with pytest.raises(LLMError, match=message) as info:
        client.json(MSGS, SCHEMA, "t", 20)
    assert not info.value.unreachable
    assert client.calls[0].error and client.calls[0].response == answer


def test_json_validate_schema_overrides_the_sent_schema():
    loose = {"type": "object"}
    assert fake('{"pick": "z"}').json(MSGS, SCHEMA, "t", 20, validate_schema=loose) == {"pick": "z"}


def test_parse_json_rejects_garbage():
    with pytest.raises(LLMError):
        parse_json("{")


# -- yes_probability -----------------------------------------------------------------------


def test_yes_probability_from_logprobs_sums_token_variants():
    msg = logprob_message({"Yes": math.log(0.5), " yes": math.log(0.1), "No": math.log(0.2)})
    client = fake(msg)
    p = client.yes_probability(MSGS, "score")
    assert p == pytest.approx(0.6 / 0.8)
    assert client.calls[0].extra["p_yes"] == pytest.approx(p)


def test_yes_probability_is_one_half_without_yes_or_no():
    assert fake(logprob_message({"Maybe": -0.1, "Sure": -2.0})).yes_probability(MSGS, "s") == 0.5


def test_yes_probability_without_logprobs_raises():
    client = fake("Yes")
    with pytest.raises(LLMError, match="logprobs"):
        client.yes_probability(MSGS, "s")
    assert client.calls[0].error


def test_yes_no_probability_only_no():
    assert yes_no_probability({"content": [{"token": "No", "logprob": -0.01}]}) == 0.0


# -- retries -------------------------------------------------------------------------------


def test_transient_errors_are_retried_then_succeed():
    model = FlakyChat(failures=2, error=connection_error())
    client = LLMClient(model, retries=2, retry_wait_s=0)
    assert client.json(MSGS, SCHEMA, "t", 20) == {"pick": "a"}
    assert model.attempts == 3 and client.calls[0].retries == 2


def test_retries_exhausted_raise_unreachable_llm_error():
    model = FlakyChat(failures=5, error=connection_error())
    client = LLMClient(model, retries=1, retry_wait_s=0)
    with pytest.raises(LLMError) as info:
        client.json(MSGS, SCHEMA, "t", 20)
    assert info.value.unreachable
    assert model.attempts == 2
    assert client.calls[0].retries == 1 and "APIConnectionError" in client.calls[0].error


def test_non_transient_errors_are_not_retried():
    model = FlakyChat(failures=5, error=ValueError("bad request"))
    client = LLMClient(model, retries=3, retry_wait_s=0)
    with pytest.raises(LLMError, match="bad request") as info:
        client.yes_probability(MSGS, "s")
    assert model.attempts == 1 and not info.value.unreachable


def test_ping_with_a_fake_model():
    assert LLMClient(FakeMessagesListChatModel(responses=[AIMessage("pong")])).ping()
    dead = LLMClient(FlakyChat(failures=9, error=connection_error()), retries=0)
    assert not dead.ping()


def test_ping_unreachable_base_url_is_false():
    client = LLMClient(GenericFakeChatModel(messages=iter([])), base_url="http://127.0.0.1:9/v1")
    assert not client.ping(timeout_s=1)


# -- from_settings against a stub OpenAI-compatible server ---------------------------------


class _Stub(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _Stub.bodies.append(body)
        top = [{"token": "Yes", "logprob": -0.1, "bytes": None}]
        choice = {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": '{"pick": "a"}'},
            "logprobs": {"content": [{"token": "Yes", "logprob": -0.1, "bytes": None,
                                      "top_logprobs": top}]},
        }  # fmt: skip
        out = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [choice],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self) -> None:  # noqa: N802
        out = b'{"object": "list", "data": []}'
        self.send_response(200)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_url() -> Iterator[str]:
    _Stub.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_embedded_backend_gets_llama_form_and_max_tokens(settings, stub_url):
    client = LLMClient.from_settings(settings, stub_url)  # llm_base_url unset: embedded
    assert client.json_mode == "json_object_schema"
    assert client.json(MSGS, SCHEMA, "t", 20) == {"pick": "a"}
    assert client.yes_probability(MSGS, "s") == 1.0
    body_json, body_yes = _Stub.bodies
    assert body_json["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert body_json["max_tokens"] == 20 and "max_completion_tokens" not in body_json
    assert body_json["temperature"] == 0
    assert body_yes["max_tokens"] == 1 and body_yes["logprobs"] is True
    assert body_yes["top_logprobs"] >= 5
    assert client.calls[0].prompt_tokens == 7 and client.calls[0].completion_tokens == 3
    assert client.ping()


def test_hosted_backend_gets_openai_form(tmp_path, stub_url):
    settings = Settings(home=tmp_path, llm_base_url=stub_url, _env_file=None)
    client = LLMClient.from_settings(settings, stub_url)
    assert client.json_mode == "json_schema"
    client.json(MSGS, SCHEMA, "my purpose", 20)
    (body,) = _Stub.bodies
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert body["max_completion_tokens"] == 20


def test_json_mode_setting_overrides_auto(tmp_path):
    settings = Settings(home=tmp_path, llm_json_mode="json_object_schema", _env_file=None)
    client = LLMClient.from_settings(settings, "http://h/v1", embedded=False)
    assert client.json_mode == "json_object_schema"
    assert client.model.max_retries == 0 and client.model.request_timeout == 60.0


# -- the embedded server's setup (no real model) -------------------------------------------


@pytest.fixture
def fake_parts(tmp_path, monkeypatch) -> bytes:
    """Three importable fake part packages and the matching hash/size constants."""
    chunks = [b"alpha-" * 1000, b"beta-" * 777, b"gamma"]
    for n, chunk in enumerate(chunks, start=1):
        pkg = tmp_path / "parts" / f"fakepart{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(chunk)
        (pkg / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{n:02d}.bin')\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path / "parts"))
    blob = b"".join(chunks)
    monkeypatch.setattr(llm_server, "PART_MODULE", "fakepart{n}")
    monkeypatch.setattr(llm_server, "PART_COUNT", len(chunks))
    monkeypatch.setattr(llm_server, "GGUF_SIZE", len(blob))
    monkeypatch.setattr(llm_server, "GGUF_SHA256", hashlib.sha256(blob).hexdigest())
    return blob


def test_ensure_gguf_assembles_verifies_and_marks(settings, fake_parts):
    path = ensure_gguf(settings)
    assert path.read_bytes() == fake_parts
    assert (path.parent / (path.name + ".sha256-ok")).is_file()
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".partial"] == []
    assert ensure_gguf(settings) == path  # marker path: no reassembly


def test_ensure_gguf_rehashes_a_file_without_marker(settings, fake_parts):
    path = ensure_gguf(settings)
    (path.parent / (path.name + ".sha256-ok")).unlink()
    path.write_bytes(b"X" * len(fake_parts))  # right size, wrong content
    assert ensure_gguf(settings).read_bytes() == fake_parts


def test_ensure_gguf_hash_mismatch_removes_temp(settings, fake_parts, monkeypatch):
    monkeypatch.setattr(llm_server, "GGUF_SHA256", "0" * 64)
    with pytest.raises(LLMSetupError, match="sha256"):
        ensure_gguf(settings)
    assert list(settings.llm_dir.iterdir()) == []


def test_ensure_gguf_missing_parts_says_how_to_install(settings, monkeypatch):
    monkeypatch.setattr(llm_server, "PART_MODULE", "no_such_part_module_{n}")
    with pytest.raises(LLMSetupError, match=r"pip install 'recpilot\[embedded\]'"):
        ensure_gguf(settings)


def test_server_command_has_the_needed_flags(settings):
    cmd = EmbeddedLLMServer(settings).command(Path("/m.gguf"))
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert cmd[:3] == [sys.executable, "-m", "llama_cpp.server"]
    assert flags["--logits_all"] == "True" and flags["--host"] == "127.0.0.1"
    assert flags["--n_ctx"] == str(settings.llm_context_tokens)
    assert flags["--model_alias"] == settings.llm_model
    assert flags["--chat_format"] == "chatml-function-calling"


def test_server_without_llama_cpp_is_a_clear_error(settings, monkeypatch):
    monkeypatch.setattr(llm_server.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LLMSetupError, match="llama-cpp-python is not installed"):
        EmbeddedLLMServer(settings, gguf_path=Path("/m.gguf")).start()


def test_server_that_dies_reports_the_log_tail(settings, monkeypatch):
    crash = [sys.executable, "-c", "import sys; print('model load failed: boom'); sys.exit(3)"]
    monkeypatch.setattr(EmbeddedLLMServer, "command", lambda self, gguf: crash)
    server = EmbeddedLLMServer(settings, gguf_path=Path("/m.gguf"))
    with pytest.raises(LLMSetupError, match="boom"):
        server.start()
    assert not server.running


def test_resolve_llm_uses_the_configured_url_without_starting(tmp_path, monkeypatch):
    monkeypatch.setattr(EmbeddedLLMServer, "start", lambda self: pytest.fail("started"))
    settings = Settings(home=tmp_path, llm_base_url="http://example:8000/v1", _env_file=None)
    with resolve_llm(settings) as url:
        assert url == "http://example:8000/v1"


def test_grammar_friendly_drops_only_the_slow_bounds():
    from recpilot.llm.client import grammar_friendly

    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 4},
            "top": {"type": "array", "items": {"enum": ["x"]}, "minItems": 3, "maxItems": 3},
            "n": {"type": "integer", "minimum": 20, "maximum": 300},
            "why": {"type": "string", "maxLength": 200},
        },
    }
    out = grammar_friendly(schema)
    tags = out["properties"]["tags"]
    assert "minItems" not in tags and "maxItems" not in tags
    assert out["properties"]["top"]["minItems"] == out["properties"]["top"]["maxItems"] == 3
    assert "maxLength" not in out["properties"]["why"]
    assert out["properties"]["n"] == {"type": "integer"}
    assert schema["properties"]["why"]["maxLength"] == 200  # the caller's schema is untouched
