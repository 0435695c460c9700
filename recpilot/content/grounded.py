"""Grounded item texts: ``describe`` (a description) and ``promote`` (ad copy).

Each is one JSON-schema LLM call over the item's facts (:class:`~.facts.ItemFacts`),
then the code fact-check (:func:`~.facts.check_facts`). A text that fails is
regenerated with its problems named in the prompt ("do not say …"), up to
``attempts`` times, then dropped: the result then has ``text=None`` and every
attempt's problems, so a caller reports the failure instead of shipping an invented
fact. Before regenerating, the sentences that failed are cut out: when at least one
sentence passes, the rest is kept (``dropped_sentences`` says what was cut), because
the 1.5B embedded model often adds one invented name to an otherwise good text.
Source of the scenarios: the survey's seed scenarios (item description
generation, ad copy for an audience).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from recpilot.content.facts import ItemFacts, backed_sentences, check_facts
from recpilot.data.catalogue import Catalogue
from recpilot.llm.client import LLMClient, LLMError
from recpilot.prompts import load_prompt

TEXT_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 600}},
    "required": ["text"],
    "additionalProperties": False,
}
Kind = Literal["description", "promotion"]


class Grounded(BaseModel):
    """A generated item text and how it passed the fact-check.

    Attributes:
        item_id: the item.
        kind: ``description`` or ``promotion``.
        text: the first text that passed; None when every attempt failed (dropped).
        attempts: LLM calls made (1 … ``attempts``).
        problems: per failed attempt, the fact-check's problems (or the LLM error).
        rejected: the failed texts, in order (for the report; never shown as output).
        dropped_sentences: sentences cut from the accepted text (they failed the check).
        tokens: prompt + completion tokens over all attempts (as the backend counted).
    """

    item_id: str
    kind: Kind
    text: str | None
    attempts: int = Field(ge=0)
    problems: list[list[str]] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)
    dropped_sentences: list[str] = Field(default_factory=list)
    tokens: int = 0

    @property
    def ok(self) -> bool:
        """True when a text passed the fact-check."""
        return self.text is not None


def _prompt(kind: Kind, facts: ItemFacts, audience: str, avoid: list[str]) -> str:
    name = "describe" if kind == "description" else "promote"
    note = ""
    if avoid:
        note = ("Your previous answer was rejected because: " + "; ".join(avoid)
                + ". Do not repeat those claims.")  # fmt: skip
    return load_prompt(name).format(
        noun=facts.noun, facts=facts.lines(), audience=audience or "anyone", note=note
    )


def generate_grounded(
    llm: LLMClient,
    catalogue: Catalogue,
    facts: ItemFacts,
    kind: Kind,
    *,
    audience: str = "",
    attempts: int = 3,
    max_tokens: int = 160,
) -> Grounded:
    """Write a ``kind`` text about the item, fact-checked, regenerated or dropped.

    Args:
        llm: the LLM client (any OpenAI-compatible backend or the embedded model).
        catalogue: for the fact-check's category vocabulary.
        facts: the item's facts (:func:`~.facts.item_facts`).
        kind: ``description`` or ``promotion``.
        audience: who the ad copy is for ("families with young kids"); promotions only.
        attempts: LLM calls at most (≥ 1).
        max_tokens: generated-token cap per call.

    Returns:
        :class:`Grounded`; ``text`` is None when no attempt passed.

    Raises:
        ValueError: ``attempts`` < 1.
        recpilot.llm.client.LLMConfigError: the endpoint is misconfigured (key, model).
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    result = Grounded(item_id=facts.item_id, kind=kind, text=None, attempts=0)
    avoid: list[str] = []
    for _ in range(attempts):
        result.attempts += 1
        messages = [{"role": "user", "content": _prompt(kind, facts, audience, avoid)}]
        try:
            out = llm.json(messages, TEXT_SCHEMA, purpose=kind, max_tokens=max_tokens)
        except LLMError as exc:
            if getattr(exc, "unreachable", False):
                raise
            result.problems.append([f"LLM error: {exc}"])
            continue
        finally:
            last = llm.calls[-1] if llm.calls else None
            if last is not None:
                result.tokens += last.prompt_tokens + last.completion_tokens
        text = " ".join(out["text"].split())
        problems = check_facts(text, facts, catalogue)
        if not problems:
            result.text = text
            return result
        result.problems.append(problems)
        result.rejected.append(text)
        kept, dropped = backed_sentences(text, facts, catalogue)
        if kept:
            result.text, result.dropped_sentences = kept, dropped
            return result
        avoid = problems
    return result
