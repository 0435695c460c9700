"""LLM fine ranking of the coarse short list, blended with the coarse score.

Two modes, both with a PALR-style prompt — user profile summary + recent history (titles,
ratings) + candidates with metadata (titles, genres) (Yang et al. 2023, "PALR:
Personalization Aware LLMs for Recommendation"); years are left out for speed (see
``HISTORY_ITEM`` below):

- ``pointwise``: one "Would this user enjoy X? Yes/No" call per candidate, scored by
  P(Yes) from the first token's logprobs — item scoring as in TALLRec (Bao et al. 2023)
  and the "LLM as scoring function" use in Lin et al. 2023's survey. The candidate comes
  last in the prompt, so profile + history are a shared prefix that llama.cpp keeps in
  its KV cache between the calls; only the candidate line is processed each time. Each
  call still costs ~0.5-0.65 s on 2 CPU cores (llama-cpp-python 0.3.36 sorts the whole
  151k-token vocabulary in Python for ``top_logprobs``, ~0.17 s, and small batches run
  at ~18 ms/token), so 20 candidates take ~13 s; ``max_llm_items`` limits the LLM to the
  head of the list (8 → ~5-6 s).
- ``listwise``: one JSON call whose schema makes ``ranking`` an array of the candidate
  ids (``enum``). To keep generation short (~30 tokens/s on 2 CPU cores) the model
  returns only the best ``top_n`` ids (default 10); the candidates it did not list keep
  their coarse order after the ones it did. Prompt processing (~90 tokens/s) dominates
  a cold call: 20 candidates + 10 history items ≈ 470 tokens ≈ 8 s cold, 2.8 s when the
  prompt is cached; ``top_n=5`` with a 350-token budget ≈ 5.7 s cold.

The LLM score is blended with the coarse score: both are min-max normalised over the
ranked candidates (listwise: rank r, 0-based, of n → ``1 - r/n``) and
``final = weight * llm + (1 - weight) * coarse``. Any :class:`LLMError` (unreachable,
timeout, invalid output) makes :func:`fine_rank` fall back to the coarse order and say so.

Token counts are estimated, not measured (no tokenizer download, no server round trip):
one token per digit plus one per 3.4 other characters, plus a fixed ChatML overhead per
message (see :func:`estimate_tokens`); within ~5 % of Qwen2.5's real counts on these
prompts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from recpilot.llm.client import LLMClient, LLMError, Message
from recpilot.prompts import load_prompt

CHARS_PER_TOKEN = 3.4  # non-digit characters per Qwen2.5 token on these prompts
MESSAGE_OVERHEAD_TOKENS = 5  # "<|im_start|>role\n" ... "<|im_end|>\n"
REPLY_OVERHEAD_TOKENS = 3  # "<|im_start|>assistant\n"
DEFAULT_TOP_N = 10  # listwise: ids the model returns; the rest keep coarse order
DEFAULT_MIN_HISTORY = 3  # history items kept before any candidate is cut

# What each line shows (keyword arguments of describe_item). Every token of a pointwise
# candidate line is processed once per candidate (~18 ms each on 2 cores). Years are left
# out: Qwen2.5 splits digits, so "(1995)" costs 6 tokens a line — ~1.5 s on a 20-candidate
# listwise prompt; the profile summary carries the user's genres, so history lines don't.
HISTORY_ITEM: dict[str, Any] = {"year": False, "max_genres": 0, "rating": True}
POINTWISE_CANDIDATE: dict[str, Any] = {"year": False, "max_genres": 2, "rating": False}
LISTWISE_CANDIDATE: dict[str, Any] = {"year": False, "max_genres": 2, "rating": False}

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
    """Approximate Qwen2.5 token count: one per digit + ``ceil(other chars / 3.4)``.

    Qwen2.5's tokenizer splits numbers into single digits; the rest of these prompts
    (short titles, genres, punctuation) runs at about 3.4 characters per token. Checked
    against the real tokenizer (``/extras/tokenize/count``) on fine-ranking prompts:
    within about 5 %.

    Args:
        text: any prompt text.

    Returns:
        Estimated tokens (not counting chat-template overhead).
    """
    digits = sum(ch.isdigit() for ch in text)
    return digits + math.ceil((len(text) - digits) / CHARS_PER_TOKEN)


def describe_item(
    item: dict[str, Any], *, year: bool = True, max_genres: int = 2, rating: bool = True
) -> str:
    """One compact item line: ``Title (1995; Animation, Comedy)``, optionally ``… 4/5``.

    Args:
        item: ``{"title": str, "year": int | None, "categories": list[str],
            "rating": float | None}`` (all optional except ``title``).
        year: include the year (Qwen2.5 spends 4 tokens on it: digits are split).
        max_genres: genres kept, in catalogue order (0 = none).
        rating: append ``r/5`` when the item has a rating.

    Returns:
        The line, without the id.
    """
    title = str(item.get("title") or item.get("item_id", "?")).strip()
    parts = []
    if year and item.get("year") and f"({item['year']})" not in title:
        parts.append(str(item["year"]))
    genres = [str(c) for c in (item.get("categories") or [])][:max_genres]
    if genres:
        parts.append(", ".join(genres))
    line = f"{title} ({'; '.join(parts)})" if parts else title
    if rating and item.get("rating") is not None:
        line += f" {float(item['rating']):g}/5"
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
        return (
            load_prompt("fine_pointwise")
            .format(profile=self.profile, history=self.history_text(), candidate=candidate)
            .strip()
        )

    def listwise_user(self) -> str:
        return (
            load_prompt("fine_listwise")
            .format(
                profile=self.profile,
                history=self.history_text(),
                candidates="\n".join(self.candidates),
                top_n=min(self.top_n, len(self.candidates)),
            )
            .strip()
        )

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


def blend(llm: dict[str, float], coarse: dict[str, float], weight: float) -> dict[str, float]:
    """The fine stage's one blend: ``weight · minmax(llm) + (1 - weight) · minmax(coarse)``.

    Used by :func:`fine_rank` and by the evaluation's offline re-blending
    (``recpilot.evals.pipelines.reblend``), so both rank the same way.

    Args:
        llm: the LLM's score per candidate (the ids that are blended).
        coarse: the coarse score of (at least) the same ids.
        weight: weight of the LLM score in [0, 1].

    Returns:
        ``{id: blended score in [0, 1]}`` for the ids of ``llm``.
    """
    coarse_n = minmax({i: coarse[i] for i in llm})
    llm_n = minmax(llm)
    return {i: weight * llm_n[i] + (1.0 - weight) * coarse_n[i] for i in llm}


def _pointwise(
    client: LLMClient, prompt: _Prompt, ids: list[str], dropped: list[str]
) -> dict[str, float]:
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


@dataclass(frozen=True)
class Reranker:
    """One LLM fine-ranking method (the registry's entry).

    Attributes:
        name: the fine mode (``pointwise``, ``listwise``).
        candidate_line: :func:`describe_item` keywords of a candidate line.
        ids_in_prompt: candidate lines are ``id: description`` (the LLM answers ids).
        score: ``(client, prompt, candidate ids, dropped) → {id: LLM score}``; appends
            invalid ids it received to ``dropped``; raises :class:`LLMError` on failure.
    """

    name: str
    candidate_line: dict[str, Any]
    ids_in_prompt: bool
    score: Callable[[LLMClient, _Prompt, list[str], list[str]], dict[str, float]]


RERANKERS: dict[str, Reranker] = {
    "pointwise": Reranker("pointwise", POINTWISE_CANDIDATE, False, _pointwise),
    "listwise": Reranker("listwise", LISTWISE_CANDIDATE, True, _listwise),
}


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
    max_llm_items: int | None = None,
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
        max_llm_items: show the LLM at most this many candidates (the coarse head);
            None = all that fit the budget. The rest follow in coarse order.

    Returns:
        A :class:`FineResult`; ``order`` is always a permutation of the candidate ids.
        Never raises for LLM failures: they give ``fell_back=True`` and the coarse order.

    Raises:
        ValueError: unknown ``mode`` or ``weight`` outside [0, 1].
    """
    if mode not in RERANKERS:
        raise ValueError(f"mode must be 'pointwise' or 'listwise', got {mode!r}")
    reranker = RERANKERS[mode]
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    ids = list(dict.fromkeys(str(c["item_id"]) for c in candidates))
    by_id = {str(c["item_id"]): c for c in reversed(candidates)}  # first occurrence wins
    coarse = {i: float(by_id[i].get("coarse_score") or 0.0) for i in ids}
    shown = ids if max_llm_items is None else ids[: max(max_llm_items, 0)]
    fmt = reranker.candidate_line
    lines = [describe_item(by_id[i], **fmt) for i in shown]
    prompt = _Prompt(
        system=load_prompt("fine_system").strip(),
        profile=profile.strip() or "unknown",
        history=[describe_item(h, **HISTORY_ITEM) for h in history],
        candidates=[f"{i}: {t}" for i, t in zip(shown, lines, strict=True)]
        if reranker.ids_in_prompt
        else lines,
        mode=mode,
        top_n=top_n,
    )
    n_shown = len(shown) - _fit(prompt, prompt_token_budget, min_history)
    kept, cut = ids[:n_shown], ids[n_shown:]
    result = FineResult(
        order=list(ids),
        scores=minmax(coarse),
        mode=mode,
        truncated_ids=cut,
        history_used=len(prompt.history),
        prompt_tokens_est=prompt.tokens(),
    )
    if not kept:
        return result
    if prompt.tokens() > prompt_token_budget:
        return result.model_copy(update={
            "fell_back": True,
            "fallback_reason": f"prompt needs ~{prompt.tokens()} tokens even cut down; "
                               f"budget {prompt_token_budget}",
        })  # fmt: skip
    dropped: list[str] = []
    try:
        llm = reranker.score(client, prompt, kept, dropped)
    except LLMError as exc:
        return result.model_copy(update={
            "fell_back": True,
            "fallback_reason": f"{mode} LLM call failed: {exc}",
            "dropped_ids": dropped,
            "llm_unreachable": exc.unreachable,
        })  # fmt: skip
    final = blend({i: llm[i] for i in kept}, coarse, weight)
    ranked = sorted(kept, key=lambda i: -final[i])  # stable: ties keep coarse order
    return result.model_copy(update={
        "order": ranked + cut,
        "scores": final,
        "llm_scores": llm,
        "dropped_ids": dropped,
    })  # fmt: skip
