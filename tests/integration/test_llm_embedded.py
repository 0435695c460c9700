"""The LLM client and fine ranking against the real embedded Qwen2.5-Coder-1.5B server."""

from __future__ import annotations

import pytest

from recpilot.config.settings import Settings
from recpilot.evals.bench_fine import DEFAULT_PROFILE, demo_inputs
from recpilot.funnel.fine_rank import fine_rank
from recpilot.llm.client import LLMClient
from recpilot.llm.server import EmbeddedLLMServer, free_port

pytestmark = pytest.mark.integration

GENRES = ["Animation", "Horror", "Western"]


@pytest.fixture(scope="module")
def client(embedded_settings: Settings, embedded_llm: str) -> LLMClient:
    return LLMClient.from_settings(embedded_settings, embedded_llm, embedded=True)


def test_server_answers_ping(client):
    assert client.ping()


def test_json_follows_a_schema_with_an_enum(client):
    schema = {
        "type": "object",
        "properties": {"genre": {"type": "string", "enum": GENRES}, "why": {"type": "string"}},
        "required": ["genre", "why"],
    }
    messages = [
        {"role": "system", "content": "You classify movies."},
        {"role": "user", "content": "Which genre fits 'The Lion King (1994)'? Answer JSON."},
    ]
    out = client.json(messages, schema, purpose="it_json", max_tokens=200)
    assert out["genre"] in GENRES and isinstance(out["why"], str)
    call = client.calls[-1]
    assert call.error is None and call.prompt_tokens > 0 and call.completion_tokens > 0


def test_yes_probability_is_a_probability_that_tracks_the_answer(client):
    def ask(q: str) -> float:
        return client.yes_probability([{"role": "user", "content": f"{q} Answer Yes or No."}], "it")

    p_true = ask("Is Paris the capital of France?")
    p_false = ask("Is Paris the capital of Germany?")
    assert 0.0 <= p_false < p_true <= 1.0
    assert client.calls[-1].completion_tokens == 1


@pytest.mark.parametrize("mode", ["pointwise", "listwise"])
def test_fine_rank_returns_a_permutation_of_20_candidates(client, mode):
    candidates, history = demo_inputs()
    client.reset_calls()
    result = fine_rank(client, DEFAULT_PROFILE, history, candidates, mode, 0.5, 1500)
    ids = [c["item_id"] for c in candidates]
    assert not result.fell_back, result.fallback_reason
    assert sorted(result.order) == sorted(ids) and len(result.order) == 20
    assert set(result.llm_scores) == set(ids)
    assert all(0.0 <= s <= 1.0 for s in result.scores.values())
    assert len(client.calls) == (20 if mode == "pointwise" else 1)


def test_fine_rank_falls_back_when_the_url_is_unreachable(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(home=tmp_path, llm_retries=1, llm_timeout_s=5, _env_file=None)
    dead = LLMClient.from_settings(settings, url, embedded=True)
    candidates, history = demo_inputs()
    for mode in ("pointwise", "listwise"):
        result = fine_rank(dead, DEFAULT_PROFILE, history, candidates, mode, 0.5, 1500)  # type: ignore[arg-type]
        assert result.fell_back and result.llm_unreachable
        assert result.order == [c["item_id"] for c in candidates]
    assert not dead.ping()


def test_fine_rank_falls_back_after_the_server_stops(tmp_path, shared_gguf):
    settings = Settings(home=tmp_path, llm_context_tokens=1024, llm_retries=0, _env_file=None)
    server = EmbeddedLLMServer(settings, gguf_path=shared_gguf).start()
    local = LLMClient.from_settings(settings, server.base_url, embedded=True)
    assert local.ping()
    server.stop()
    assert not server.running and not local.ping()
    candidates, history = demo_inputs()
    result = fine_rank(local, DEFAULT_PROFILE, history, candidates, "listwise", 0.5, 1500)
    assert result.fell_back and result.order == [c["item_id"] for c in candidates]
    assert (tmp_path / "logs" / "llm-server.log").is_file()
