"""fine_rank with LangChain fake chat models; the prompt loader."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from fakes import fake_llm, yes_message
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
)
from langchain_core.outputs import ChatGeneration, ChatResult

from recpilot.funnel.fine_rank import (
    describe_item,
    estimate_tokens,
    fine_rank,
    listwise_schema,
    minmax,
)
from recpilot.llm.client import LLMClient
from recpilot.prompts import available_prompts, load_prompt

GENRES = [["Animation", "Comedy"], ["Crime", "Drama"], ["Horror"], ["Musical", "Romance"]]


def candidates(n: int = 6) -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"c{i}",
            "title": f"Movie {chr(65 + i)}",
            "year": 1990 + i,
            "categories": GENRES[i % len(GENRES)],
            "coarse_score": 10.0 - i,
        }
        for i in range(n)
    ]


def history(n: int = 5) -> list[dict[str, Any]]:
    return [
        {"item_id": f"h{i}", "title": f"Seen {i}", "year": 1980 + i,
         "categories": ["Drama"], "rating": 4 + i % 2}
        for i in range(n)
    ]  # fmt: skip


def rank(client: LLMClient, mode: str = "listwise", weight: float = 1.0, **kw: Any):
    kw.setdefault("prompt_token_budget", 2000)
    cands = kw.pop("cands", None) or candidates()
    return fine_rank(client, "Likes animation.", history(), cands, mode, weight, **kw)


def coarse_ids(n: int = 6) -> list[str]:
    return [c["item_id"] for c in candidates(n)]


# -- listwise ------------------------------------------------------------------------------


def test_listwise_valid_answer_reorders():
    client = fake_llm(json.dumps({"ranking": ["c3", "c0", "c5"]}))
    result = rank(client)
    assert not result.fell_back and result.dropped_ids == []
    assert result.order[:3] == ["c3", "c0", "c5"]
    assert sorted(result.order) == sorted(coarse_ids())
    assert result.order[3:] == ["c1", "c2", "c4"]  # unlisted: coarse order
    assert result.llm_scores["c3"] == 1.0 and result.llm_scores["c0"] == pytest.approx(1 - 1 / 6)
    (call,) = client.calls
    assert call.purpose == "fine_listwise"
    prompt = call.messages[-1]["content"]
    assert "c3: Movie D (Musical, Romance)" in prompt and "Seen 4 4/5" in prompt


def test_listwise_weight_zero_keeps_coarse_order():
    result = rank(fake_llm(json.dumps({"ranking": ["c5", "c4"]})), weight=0.0)
    assert result.order == coarse_ids() and not result.fell_back


def test_listwise_blend_is_weighted_minmax():
    result = rank(fake_llm(json.dumps({"ranking": ["c5"]})), weight=0.5, cands=candidates(3))
    # c5 is not among 3 candidates: dropped, and no valid id left -> fallback
    assert result.dropped_ids == ["c5"] and result.fell_back
    result = rank(fake_llm(json.dumps({"ranking": ["c2"]})), weight=0.5, cands=candidates(3))
    # llm: c2 r0 -> 1, c0 r1 -> 2/3, c1 r2 -> 1/3 ; normalised: 1, .5, 0
    assert result.scores == pytest.approx({"c2": 0.5, "c0": 0.75, "c1": 0.25})
    assert result.order == ["c0", "c2", "c1"]


def test_listwise_ids_outside_the_list_are_dropped_and_recorded():
    result = rank(fake_llm(json.dumps({"ranking": ["c1", "x99", "c0", 42]})))
    assert not result.fell_back
    assert result.dropped_ids == ["x99", "42"]
    assert result.order[:2] == ["c1", "c0"] and len(result.order) == 6


def test_listwise_duplicates_are_dropped_and_recorded():
    result = rank(fake_llm(json.dumps({"ranking": ["c2", "c2", "c1", "c2"]})))
    assert result.dropped_ids == ["c2", "c2"]
    assert result.order[:2] == ["c2", "c1"] and sorted(result.order) == sorted(coarse_ids())


@pytest.mark.parametrize(
    "answer", ["not json", '{"ranking": "c1"}', '{"order": ["c1"]}', '{"ranking": ["zz"]}']
)
def test_listwise_invalid_output_falls_back_to_coarse(answer):
    result = rank(fake_llm(answer))
    assert result.fell_back and result.fallback_reason
    assert result.order == coarse_ids() and result.llm_scores == {}
    assert not result.llm_unreachable


def test_listwise_schema_enumerates_the_candidates():
    schema = listwise_schema(["a", "b", "c"], top_n=10)
    ranking = schema["properties"]["ranking"]
    assert ranking["items"]["enum"] == ["a", "b", "c"]
    assert ranking["minItems"] == ranking["maxItems"] == 3 and ranking["uniqueItems"]


def test_listwise_asks_for_top_n():
    client = fake_llm(json.dumps({"ranking": ["c0"]}))
    rank(client, top_n=4)
    assert "with the 4 best ids" in client.calls[0].messages[-1]["content"]


# -- pointwise -----------------------------------------------------------------------------


def test_pointwise_scores_by_yes_probability_with_shared_prefix():
    probs = [0.2, 0.9, 0.5, 0.1]
    model = FakeMessagesListChatModel(responses=[yes_message(p) for p in probs])
    client = LLMClient(model, retries=0)
    result = rank(client, mode="pointwise", cands=candidates(4))
    assert not result.fell_back
    assert result.order == ["c1", "c2", "c0", "c3"]
    assert result.llm_scores == pytest.approx(dict(zip(coarse_ids(4), probs, strict=True)))
    prompts = [c.messages[-1]["content"] for c in client.calls]
    assert [c.purpose for c in client.calls] == ["fine_pointwise"] * 4
    prefix = prompts[0].rsplit("Movie:", 1)[0]
    for prompt, cand in zip(prompts, candidates(4), strict=True):
        assert prompt.startswith(prefix)  # profile + history reused by the KV cache
        assert prompt.endswith(f"Movie: {describe_item(cand, year=False, rating=False)}")


def test_pointwise_failure_midway_falls_back():
    class Dies(BaseChatModel):
        seen: int = 0

        @property
        def _llm_type(self) -> str:
            return "dies"

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
            self.seen += 1
            if self.seen > 2:
                raise openai.APITimeoutError(request=httpx.Request("POST", "http://x/v1"))
            return ChatResult(generations=[ChatGeneration(message=yes_message(0.7))])

    client = LLMClient(Dies(), retries=1, retry_wait_s=0)
    result = rank(client, mode="pointwise")
    assert result.fell_back and result.llm_unreachable
    assert "pointwise" in (result.fallback_reason or "")
    assert result.order == coarse_ids()
    assert client.calls[-1].error and client.calls[-1].retries == 0  # timeouts: no retry


def test_pointwise_missing_logprobs_falls_back():
    result = rank(fake_llm("Yes"), mode="pointwise")
    assert result.fell_back and "logprobs" in (result.fallback_reason or "")


def test_max_llm_items_limits_what_the_llm_sees():
    model = FakeMessagesListChatModel(responses=[yes_message(0.1), yes_message(0.9)])
    client = LLMClient(model, retries=0)
    result = rank(client, mode="pointwise", max_llm_items=2)
    assert len(client.calls) == 2
    assert result.order == ["c1", "c0", "c2", "c3", "c4", "c5"]
    assert result.truncated_ids == ["c2", "c3", "c4", "c5"]


# -- token budget --------------------------------------------------------------------------


def test_budget_cuts_history_oldest_first_then_lowest_candidates():
    hist = history(10)
    cands = candidates(12)
    full = fine_rank(fake_llm('{"ranking": ["c0"]}'), "p", hist, cands, "listwise", 1.0, 5000)
    assert full.history_used == 10 and full.truncated_ids == []
    client = fake_llm('{"ranking": ["c0"]}')
    budget = full.prompt_tokens_est - 60
    result = fine_rank(client, "p", hist, cands, "listwise", 1.0, budget, min_history=3)
    assert result.prompt_tokens_est <= budget
    assert result.history_used == 3 and result.truncated_ids
    cut = result.truncated_ids
    assert cut == [c["item_id"] for c in cands][-len(cut) :]  # lowest coarse first
    assert result.order[-len(cut) :] == cut  # and they stay last, in coarse order
    prompt = client.calls[0].messages[-1]["content"]
    assert "Seen 9" in prompt and "Seen 7" in prompt and "Seen 6" not in prompt
    assert all(f"{c}:" not in prompt for c in cut)


def test_budget_too_small_falls_back_without_calling():
    client = fake_llm('{"ranking": ["c0"]}')
    result = rank(client, prompt_token_budget=20)
    assert result.fell_back and "budget" in (result.fallback_reason or "")
    assert not client.calls and result.order == coarse_ids()


def test_estimate_tokens_counts_digits_one_by_one():
    assert estimate_tokens("1995") == 4
    assert estimate_tokens("abcdefg") == 3  # ceil(7 / 3.4)
    assert estimate_tokens("") == 0


# -- small pieces --------------------------------------------------------------------------


def test_describe_item_formats():
    item = {"title": "Toy Story", "year": 1995, "categories": ["Animation", "Children's", "X"],
            "rating": 4.5}  # fmt: skip
    assert describe_item(item) == "Toy Story (1995; Animation, Children's) 4.5/5"
    assert describe_item(item, year=False, max_genres=0, rating=False) == "Toy Story"
    assert describe_item({"title": "Heat (1995)", "year": 1995}) == "Heat (1995)"


def test_minmax_constant_and_range():
    assert minmax({"a": 3.0, "b": 3.0}) == {"a": 0.5, "b": 0.5}
    assert minmax({"a": 1.0, "b": 3.0, "c": 2.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="mode"):
        rank(fake_llm("{}"), mode="sideways")
    with pytest.raises(ValueError, match="weight"):
        rank(fake_llm("{}"), weight=1.5)


def test_no_candidates_is_an_empty_result():
    client = fake_llm("{}")
    result = fine_rank(client, "p", history(), [], "listwise", 0.5, 1000)
    assert result.order == [] and not result.fell_back and not client.calls


# -- prompt loader -------------------------------------------------------------------------


def test_load_prompt_latest_and_pinned_versions():
    latest = load_prompt("fine_listwise")
    assert "{candidates}" in latest and "{history}" in latest and "{profile}" in latest
    assert load_prompt("fine_listwise.v1") == latest
    assert "{candidate}" in load_prompt("fine_pointwise")
    assert {"fine_listwise", "fine_pointwise", "fine_system"} <= set(available_prompts())


@pytest.mark.parametrize("name", ["no_such_prompt", "fine_listwise.v99"])
def test_load_prompt_unknown_names_are_clear(name):
    with pytest.raises(KeyError, match="available: .*fine_listwise.v1"):
        load_prompt(name)
