"""LLM fine ranking of the coarse short list, blended with the coarse score.

Two modes, both with a PALR-style prompt — user profile summary + recent history with
titles/years/genres + candidates with metadata (Yang et al. 2023, "PALR: Personalization
Aware LLMs for Recommendation"):

- ``pointwise``: one "Would this user enjoy X? Yes/No" call per candidate, scored by
  P(Yes) from the first token's logprobs — item scoring as in TALLRec (Bao et al. 2023)
  and the "LLM as scoring function" use in Lin et al. 2023's survey. The candidate comes
  last in the prompt, so profile + history are a shared prefix that llama.cpp keeps in
  its KV cache between the calls; only the candidate line is processed each time.
- ``listwise``: one JSON call whose schema makes ``ranking`` an array of the candidate
  ids (``enum``). To keep generation short (~30 tokens/s on 2 CPU cores) the model
  returns only the best ``top_n`` ids (default 10); the candidates it did not list keep
  their coarse order after the ones it did.

The LLM score is blended with the coarse score: both are min-max normalised over the
ranked candidates (listwise: rank r, 0-based, of n → ``1 - r/n``) and
``final = weight * llm + (1 - weight) * coarse``. Any :class:`LLMError` (unreachable,
timeout, invalid output) makes :func:`fine_rank` fall back to the coarse order and say so.

Token counts are estimated, not measured: ``ceil(len(text) / 3.0)`` characters per token
plus a fixed ChatML overhead per message (see :func:`estimate_tokens`). Qwen2.5's
tokenizer splits digits one by one and ids/years are dense in these prompts, so 3.0
over-estimates slightly on measured fine-ranking prompts (safe for a budget).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from recpilot.agent.llm import LLMClient, LLMError, Message
from recpilot.prompts import load_prompt

CHARS_PER_TOKEN = 3.0  # estimate for Qwen2.5 on these prompts (see module docstring)
MESSAGE_OVERHEAD_TOKENS = 5  # "<|im_start|>role\n" ... "<|im_end|>\n"
REPLY_OVERHEAD_TOKENS = 3  # "<|im_start|>assistant\n"
DEFAULT_TOP_N = 10  # listwise: ids the model returns; the rest keep coarse order
DEFAULT_MIN_HISTORY = 3  # history items kept before any candidate is cut

FineModeName = Literal["pointwise", "listwise"]


class FineResult(BaseModel):
    """Outcome of :func:`fine_rank`.

    Attributes:
        order: every candidate id exactly once, best first.
        scores: blended score in [0, 1] per LLM-ranked candidate (on fallback: the
            normalised coarse score of every candidate).
        llm_scores: the LLM's own score in [0, 1] per ranked candidate (pointwise: P(Yes);
            listwise: ``1 - r/n``); empty on fallback.
        dropped_ids: ids the LLM returned that were not candidates, or repeated ones.
        fell_back: True when the coarse order was kept because the LLM failed.
        fallback_reason: why, when ``fell_back``.
        mode: ``"pointwise"`` or ``"listwise"``.
        truncated_ids: candidates cut to fit the token budget (kept, in coarse order,
            after the ranked ones).
        history_used: history items that fitted in the prompt.
        prompt_tokens_est: estimated tokens the server processes (pointwise: the shared
            prefix once plus every candidate suffix).
        llm_unreachable: the failure was the backend being unreachable or timing out.
    """

    order: list[str]
    scores: dict[str, float] = Field(default_factory=dict)
    llm_scores: dict[str, float] = Field(default_factory=dict)
    dropped_ids: list[str] = Field(default_factory=list)
    fell_back: bool = False
    fallback_reason: str | None = None
    mode: str
    truncated_ids: list[str] = Field(default_factory=list)
    history_used: int = 0
    prompt_tokens_est: int = 0
    llm_unreachable: bool = False


# -- prompt text --------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Approximate token count: ``ceil(len(text) / CHARS_PER_TOKEN)`` (3.0 chars/token).

    Args:
        text: any prompt text.

    Returns:
        Estimated tokens (not counting chat-template overhead).
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def describe_item(item: dict[str, Any]) -> str:
    """One compact item line: ``Title (1995; Animation, Comedy)`` (+ ``, rated 4/5``).

    Args:
        item: ``{"title": str, "year": int | None, "categories": list[str],
            "rating": float | None}`` (all optional except ``title``).

    Returns:
        The line, without the id.
    """
    title = str(item.get("title") or item.get("item_id", "?")).strip()
    year = item.get("year")
    cats = ", ".join(str(c) for c in (item.get("categories") or [])[:4])
    meta = "; ".join(p for p in ((str(year) if year and f"({year})" not in title else ""), cats) if p)
    line = f"{title} ({meta})" if meta else title
    rating = item.get("rating")
    if rating is not None:
        line += f", rated {float(rating):g}/5"
    return line


@dataclass
class _Prompt:
    """The pieces of one fine-ranking prompt and its token estimate."""

    system: str
    profile: str
    history: list[str]
    candidates: list[str]  # lines, pointwise: description; listwise: "id: description"
    mode: FineModeName
    top_n: int

    def history_text(self) -> str:
        return "\n".join(f"- {line}" for line in self.history) or "- (none)"

    def pointwise_user(self, candidate: str) -> str:
        return load_prompt("fine_pointwise").format(
            profile=self.profile, history=self.history_text(), candidate=candidate
        ).strip()

    def listwise_user(self) -> str:
        return load_prompt("fine_listwise").format(
            profile=self.profile,
            history=self.history_text(),
            candidates="\n".join(self.candidates),
            top_n=min(self.top_n, len(self.candidates)),
        ).strip()

    def tokens(self) -> int:
        fixed = estimate_tokens(self.system) + 2 * MESSAGE_OVERHEAD_TOKENS
        if self.mode == "listwise":
            return fixed + estimate_tokens(self.listwise_user()) + REPLY_OVERHEAD_TOKENS
        suffixes = sum(
            estimate_tokens(c) + MESSAGE_OVERHEAD_TOKENS + REPLY_OVERHEAD_TOKENS
            for c in self.candidates
        )
        return fixed + estimate_tokens(self.pointwise_user("")) + suffixes


def _fit(prompt: _Prompt, budget: int, min_history: int) -> int:
    """Cut history (oldest first) to ``min_history``, then candidates (lowest coarse first)
    to one, then the rest of the history, until the estimate fits ``budget``.

    Returns:
        How many candidate lines were cut from the end.
    """
    cut = 0
    while prompt.tokens() > budget and len(prompt.history) > min_history:
        prompt.history.pop(0)
    while prompt.tokens() > budget and len(prompt.candidates) > 1:
        prompt.candidates.pop()
        cut += 1
    while prompt.tokens() > budget and prompt.history:
        prompt.history.pop(0)
    return cut


# -- scoring ------------------------------------------------------------------------------


def minmax(values: dict[str, float]) -> dict[str, float]:
    """Min-max normalise to [0, 1]; all-equal values map to 0.5.

    Args:
        values: ``{id: score}``.

    Returns:
        ``{id: normalised score}``.
    """
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    if hi - lo <= 1e-12:
        return {k: 0.5 for k in values}
    return {k: (v - lo) / (hi - lo) for k, v in values.items()}


def _messages(system: str, user: str) -> list[Message]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _pointwise(client: LLMClient, prompt: _Prompt, ids: list[str]) -> dict[str, float]:
    return {
        item_id: client.yes_probability(
            _messages(prompt.system, prompt.pointwise_user(line)), purpose="fine_pointwise"
        )
        for item_id, line in zip(ids, prompt.candidates, strict=True)
    }


def listwise_schema(ids: Sequence[str], top_n: int) -> dict[str, Any]:
    """JSON Schema of the listwise answer: ``{"ranking": [top_n distinct candidate ids]}``.

    Args:
        ids: candidate ids (the ``enum``).
        top_n: how many ids to return (capped at ``len(ids)``).

    Returns:
        The schema (``uniqueItems`` is advisory: llama.cpp's grammar ignores it).
    """
    n = min(top_n, len(ids))
    return {
        "type": "object",
        "properties": {
            "ranking": {
                "type": "array",
                "items": {"type": "string", "enum": list(ids)},
                "minItems": n,
                "maxItems": n,
                "uniqueItems": True,
            }
        },
        "required": ["ranking"],
    }


_LOOSE_SCHEMA = {
    "type": "object",
    "properties": {"ranking": {"type": "array", "items": {"type": ["string", "integer"]}}},
    "required": ["ranking"],
}


def _listwise(
    client: LLMClient, prompt: _Prompt, ids: list[str], dropped: list[str]
) -> dict[str, float]:
    n_top = min(prompt.top_n, len(ids))
    max_tokens = sum(len(i) + 4 for i in sorted(ids, key=len)[-n_top:]) + 16
    answer = client.json(
        _messages(prompt.system, prompt.listwise_user()),
        listwise_schema(ids, prompt.top_n),
        purpose="fine_listwise",
        max_tokens=max_tokens,
        validate_schema=_LOOSE_SCHEMA,  # repeats and strangers are dropped, not fatal
    )
    valid, ranked = set(ids), []
    for raw in answer["ranking"]:
        item_id = str(raw)
        if item_id in valid and item_id not in ranked:
            ranked.append(item_id)
        else:
            dropped.append(item_id)
    if not ranked:
        raise LLMError("listwise answer named no candidate")
    ranked += [i for i in ids if i not in ranked]  # unlisted: coarse order
    return {item_id: 1.0 - r / len(ids) for r, item_id in enumerate(ranked)}


def fine_rank(
    client: LLMClient,
    profile: str,
    history: list[dict[str, Any]],
    candidates: list[dict[str, Any]],
    mode: FineModeName,
    weight: float,
    prompt_token_budget: int,
    *,
    top_n: int = DEFAULT_TOP_N,
    min_history: int = DEFAULT_MIN_HISTORY,
) -> FineResult:
    """Re-rank the coarse short list with the LLM and blend with the coarse score.

    Args:
        client: the LLM client.
        profile: one-paragraph user profile summary.
        history: watched items, oldest first: ``{"item_id", "title", "year",
            "categories", "rating"?}`` (rating out of 5).
        candidates: in coarse order, best first: ``{"item_id", "title", "year",
            "categories", "coarse_score"}``.
        mode: ``"pointwise"`` (one Yes/No logprob call per candidate) or ``"listwise"``
            (one schema-constrained JSON call returning the best ``top_n`` ids).
        weight: weight of the LLM score in [0, 1]; 0 keeps the coarse order.
        prompt_token_budget: tokens (estimated, see :func:`estimate_tokens`) the server
            may process — pointwise: the shared prefix once plus each candidate's suffix;
            listwise: the whole prompt. History is cut first (oldest first, down to
            ``min_history``), then candidates (lowest coarse first; those stay after the
            ranked ones in coarse order), then the remaining history.
        top_n: listwise only — ids the model returns; the others keep coarse order.
        min_history: history items kept before candidates are cut.

    Returns:
        A :class:`FineResult`; ``order`` is always a permutation of the candidate ids.
        Never raises for LLM failures: they give ``fell_back=True`` and the coarse order.

    Raises:
        ValueError: unknown ``mode`` or ``weight`` outside [0, 1].
    """
    if mode not in ("pointwise", "listwise"):
        raise ValueError(f"mode must be 'pointwise' or 'listwise', got {mode!r}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    ids = list(dict.fromkeys(str(c["item_id"]) for c in candidates))
    by_id = {str(c["item_id"]): c for c in reversed(candidates)}  # first occurrence wins
    coarse = {i: float(by_id[i].get("coarse_score") or 0.0) for i in ids}
    lines = [describe_item(by_id[i]) for i in ids]
    prompt = _Prompt(
        system=load_prompt("fine_system").strip(),
        profile=profile.strip() or "unknown",
        history=[describe_item(h) for h in history],
        candidates=lines if mode == "pointwise" else [f"{i}: {t}" for i, t in zip(ids, lines)],
        mode=mode,
        top_n=top_n,
    )
    n_cut = _fit(prompt, prompt_token_budget, min_history)
    kept, cut = ids[: len(ids) - n_cut], ids[len(ids) - n_cut :]
    result = FineResult(
        order=list(ids),
        scores=minmax(coarse),
        mode=mode,
        truncated_ids=cut,
        history_used=len(prompt.history),
        prompt_tokens_est=prompt.tokens(),
    )
    if not ids:
        return result
    if prompt.tokens() > prompt_token_budget:
        return result.model_copy(update={
            "fell_back": True,
            "fallback_reason": f"prompt needs ~{prompt.tokens()} tokens even cut down; "
                               f"budget {prompt_token_budget}",
        })  # fmt: skip
    dropped: list[str] = []
    try:
        if mode == "pointwise":
            llm = _pointwise(client, prompt, kept)
        else:
            llm = _listwise(client, prompt, kept, dropped)
    except LLMError as exc:
        return result.model_copy(update={
            "fell_back": True,
            "fallback_reason": f"{mode} LLM call failed: {exc}",
            "dropped_ids": dropped,
            "llm_unreachable": exc.unreachable,
        })  # fmt: skip
    coarse_n, llm_n = minmax({i: coarse[i] for i in kept}), minmax(llm)
    final = {i: weight * llm_n[i] + (1.0 - weight) * coarse_n[i] for i in kept}
    ranked = sorted(kept, key=lambda i: -final[i])  # stable: ties keep coarse order
    return result.model_copy(update={
        "order": ranked + cut,
        "scores": final,
        "llm_scores": llm,
        "dropped_ids": dropped,
    })  # fmt: skip
