"""The one fake LLM of the unit tests: an ``LLMClient`` over LangChain's fake chat model."""

from __future__ import annotations

import math

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from recpilot.llm.client import LLMClient


class FakeChatModel(GenericFakeChatModel):
    """LangChain's fake chat model that also accepts ``bind_tools`` (native tool calling):
    the tools offered are kept in ``bound_tools`` and the next scripted answer (an
    AIMessage with ``tool_calls``) is returned as the model's answer."""

    bound_tools: list = []

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):  # noqa: ANN001, ANN201
        self.bound_tools = list(tools)
        return self


def fake_llm(*answers: str | AIMessage, retries: int = 0) -> LLMClient:
    """A client whose model answers ``answers`` in order (strings become AIMessages).

    A call after the last answer fails (the fake raises), which the client records like
    any other failed call.
    """
    messages = [a if isinstance(a, AIMessage) else AIMessage(content=a) for a in answers]
    return LLMClient(FakeChatModel(messages=iter(messages)), retries=retries, retry_wait_s=0)


def tool_message(*calls: tuple[str, dict]) -> AIMessage:
    """An answer with native ``tool_calls`` (as ChatOpenAI parses them)."""
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": f"call_{i}"} for i, (n, a) in enumerate(calls)],
    )


def yes_message(p_yes: float) -> AIMessage:
    """A pointwise answer shaped like ChatOpenAI's: first-token top logprobs Yes/No."""
    top = [
        {"token": "Yes", "logprob": math.log(p_yes), "bytes": None},
        {"token": "No", "logprob": math.log(1 - p_yes), "bytes": None},
    ]
    logprobs = {"content": [{"token": "Yes", "logprob": math.log(p_yes), "bytes": None,
                             "top_logprobs": top}]}  # fmt: skip
    return AIMessage(content="Yes", response_metadata={"logprobs": logprobs})
