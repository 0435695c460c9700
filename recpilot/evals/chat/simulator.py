"""User simulators: a seeded template simulator and an LLM simulator (iEvaLM rules).

A simulator plays one user who has a *target* item in mind. It sees only what a user of
the product sees — the agent's reply text and the shown items' ids, titles, years and
categories (:class:`Observation`) — and what that user knows: the target's attributes
(categories, year, item text when the catalogue has it) and their own history
(:class:`Target`). It never names the target: every message goes through the
:class:`~recpilot.evals.chat.leakage.LeakageGuard` (a variant that leaks is replaced,
a hint with no clean variant is dropped and counted).

Template simulator (deterministic for a seed): the opening is a vague request built
from one attribute of the target; each later turn reveals one more hint, in an order
and with phrasings drawn from the seed — a category of the target, its era (decade), a
phrase from the item's text (director, star, source: ML-100K has no item text unless
ingested with it, so the hint is then absent), an item of the user's own history that
co-occurs with the target in other users' histories, or a rejection of what was shown
("seen those", or "not that kind — no <category the shown items share and the target
lacks>"). When the agent's reply asks a question, the turn answers it (a genre
question with a category, a when/era question with the era, otherwise the next hint).

LLM simulator (iEvaLM attribute mode, Wang et al. EMNLP 2023): an OpenAI-compatible
model, its own settings (``RECPILOT_SIM_LLM_BASE_URL``, ``…_MODEL``, ``…_API_KEY``;
unset base URL = the agent's endpoint), is told the target's attributes but not its
title, and replies as the seeker; replies that leak are regenerated (up to
``retries`` times), then replaced by the template simulator's next hint.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recpilot.evals.chat.leakage import LeakageGuard, clean_title
from recpilot.evals.split import user_seed

HintKind = Literal[
    "open", "category", "era", "text", "history", "reject", "answer", "filler", "llm"
]


class Shown(BaseModel):
    """One recommended item as a user sees it."""

    item_id: str
    title: str
    year: int | None = None
    categories: list[str] = Field(default_factory=list)


class Observation(BaseModel):
    """What the user sees after a turn: the reply text and the shown items, in order."""

    reply: str
    items: list[Shown]


@dataclass(frozen=True)
class TargetItem:
    """The target as the simulated user knows it (title only for the leakage guard)."""

    item_id: str
    title: str
    year: int | None
    categories: tuple[str, ...]
    text: str = ""


@dataclass(frozen=True)
class Target:
    """One episode's user: the target and the user's own history.

    Attributes:
        user_id: the held-out user.
        item: the target (their leave-one-out test item).
        cooccurring: titles ``"Title (year)"`` of the user's training items, most
            co-occurring with the target first (users who rated both, training data).
    """

    user_id: str
    item: TargetItem
    cooccurring: tuple[str, ...] = ()


class Stated(BaseModel):
    """Constraints a message stated (template simulator only): wanted categories (any
    of them), excluded categories, the decade (e.g. 1990 for "the 1990s")."""

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    decade: int | None = None


@dataclass
class Hint:
    """One thing the user can reveal: its kind, phrasings, and the value it states."""

    kind: HintKind
    variants: list[str]
    value: str | int | None = None


class Message(BaseModel):
    """One simulator turn: the text, what it revealed, and its own cost (LLM simulator)."""

    text: str
    kind: HintKind
    stated: Stated = Field(default_factory=Stated)
    dropped: int = 0  # hints or variants skipped because they would leak
    sim_calls: int = 0
    sim_ms: float = 0.0
    sim_prompt_tokens: int = 0
    sim_completion_tokens: int = 0


class Simulator(Protocol):
    """What the episode loop drives."""

    target: Target

    def first(self) -> Message:
        """The opening message."""
        ...

    def next(self, seen: Observation) -> Message:
        """The reply to the agent's last turn (the target was not in ``seen``)."""
        ...


# -- hints ---------------------------------------------------------------------------------
_OPENINGS = [
    "Can you recommend a movie? {hint}",
    "I'm looking for something to watch tonight. {hint}",
    "Any suggestions for a film? {hint}",
    "I want to watch a movie. {hint}",
]
_CATEGORY = [
    "I'm in the mood for {c}.",
    "It should be a {c} film.",
    "Something with {c} in it.",
    "I'd like {c}.",
]
_ERA = [
    "From the {d}s, I think.",
    "It came out in the {d}s.",
    "Something made in the {d}s.",
]
_HISTORY = [
    "I really liked {t}; something along those lines.",
    "I enjoyed {t} a lot.",
    "Think of something for someone who liked {t}.",
]
_SEEN = [
    "I've seen those already. Something else?",
    "None of those, sorry. Anything different?",
    "Not quite what I'm after.",
]
_NOT_KIND = [
    "Not that kind of film: no {c} please.",
    "Those are not it; nothing {c}.",
]
_FILLER = ["Something else, please.", "Other ideas?", "Keep going, please.", "Any others?"]
_TEXT_PATTERNS = [
    (re.compile(r"directed by ((?:[A-Z][\w.'-]*\s?){1,4})"), "I think it was directed by {p}."),
    (re.compile(r"(?:starring|stars) ((?:[A-Z][\w.'-]*\s?){1,3})"), "{p} is in it, I believe."),
    (
        re.compile(r"based on (?:the |a |an )?(?:[\w'-]+ )?(novel|play|book|short story|comic)"),
        "It's based on a {p}.",
    ),
    (re.compile(r"is an? (?:\d{4} )?((?:[A-Z][a-z]+[ -]){1,2})"), "It's a {p} film."),
]
_GENRE_Q = re.compile(r"\b(genre|kind|type|sort|mood)\b", re.IGNORECASE)
_ERA_Q = re.compile(r"\b(year|era|decade|old|recent|when|new)\b", re.IGNORECASE)


def asks_question(seen: Observation) -> bool:
    """True when the agent's reply asks something: a ``?`` outside the shown titles
    (a list of "Shall We Dance?" and "What's Eating Gilbert Grape" asks nothing)."""
    text = seen.reply
    for item in seen.items:
        text = text.replace(item.title, " ")
    return "?" in text


def _decade(year: int) -> int:
    return year // 10 * 10


def text_phrases(text: str) -> list[str]:
    """Hint sentences from an item's text (director, stars, source, country), in order."""
    out = []
    for pattern, template in _TEXT_PATTERNS:
        m = pattern.search(text)
        if m:
            phrase = re.sub(r"\s+", " ", m.group(1)).strip(" ,.")
            if phrase:
                out.append(template.format(p=phrase))
    return out


@dataclass
class TemplateSimulator:
    """The deterministic template simulator (module docstring).

    Args:
        target: the user and the target.
        seed: run seed; with ``target.user_id`` it fixes hint order and phrasing.
        threshold: fuzzy title-match threshold of the leakage guard.
    """

    target: Target
    seed: int = 0
    threshold: float = 90.0
    guard: LeakageGuard = field(init=False)
    rng: np.random.Generator = field(init=False)
    queue: list[Hint] = field(init=False)
    rejected: set[str] = field(default_factory=set, init=False)
    dropped: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.guard = LeakageGuard(self.target.item.title, self.threshold)
        self.rng = user_seed(self.seed, self.target.user_id, "template-simulator")
        item = self.target.item
        hints: list[Hint] = []
        for cat in item.categories[:3]:
            hints.append(Hint("category", [t.format(c=cat.lower()) for t in _CATEGORY], cat))
        if item.year:
            d = _decade(item.year)
            hints.append(Hint("era", [t.format(d=d) for t in _ERA], d))
        for sentence in text_phrases(item.text)[:2]:
            hints.append(Hint("text", [sentence]))
        for title in self.target.cooccurring[:3]:
            variants = [t.format(t=title) for t in _HISTORY]
            if any(self.guard.clean(v) for v in variants):
                hints.append(Hint("history", variants))
                break
        order = self.rng.permutation(len(hints)).tolist()
        shuffled = [hints[i] for i in order]
        # the opening is built from an attribute (category or era), the rest follow
        first = next((h for h in shuffled if h.kind in ("category", "era")), None)
        if first is not None:
            shuffled.remove(first)
            shuffled.insert(0, first)
        # one rejection slot somewhere after the opening
        at = int(self.rng.integers(1, len(shuffled) + 1)) if shuffled else 0
        shuffled.insert(at, Hint("reject", []))
        self.queue = shuffled

    # -- helpers ------------------------------------------------------------------------
    def _pick(self, variants: list[str]) -> str | None:
        """A seeded clean variant, or None when every variant leaks."""
        order = self.rng.permutation(len(variants)).tolist() if variants else []
        for i in order:
            if self.guard.clean(variants[i]):
                return variants[i]
            self.dropped += 1
        return None

    def _pop(self, kinds: tuple[HintKind, ...] | None = None) -> tuple[Hint, str] | None:
        """The next (or next of ``kinds``) static hint that has a clean variant."""
        for pos, hint in enumerate(self.queue):
            if hint.kind == "reject" or (kinds and hint.kind not in kinds):
                continue
            del self.queue[pos]
            text = self._pick(hint.variants)
            if text is not None:
                return hint, text
            return self._pop(kinds)
        return None

    def _rejection(self, seen: Observation) -> tuple[str, str | None] | None:
        """ "Not that kind: no C" for a category most shown items share and the target
        lacks (returns the text and C), else "seen those" (C None)."""
        counts: dict[str, int] = {}
        for it in seen.items:
            for c in it.categories:
                counts[c] = counts.get(c, 0) + 1
        own = {c.lower() for c in self.target.item.categories}
        options = [
            c
            for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if c.lower() not in own and c not in self.rejected and n * 2 >= len(seen.items)
        ]
        for c in options:
            text = self._pick([t.format(c=c.lower()) for t in _NOT_KIND])
            if text is not None:
                self.rejected.add(c)
                return text, c
        text = self._pick(_SEEN)
        return (text, None) if text is not None else None

    def _message(self, text: str, kind: HintKind, hint: Hint | None = None) -> Message:
        dropped, self.dropped = self.dropped, 0
        if not self.guard.clean(text):  # cannot happen: every piece was checked
            raise AssertionError(f"simulator message leaks the target: {text!r}")
        stated = Stated()
        if hint is not None and hint.kind == "category":
            stated.include = [str(hint.value)]
        elif hint is not None and hint.kind == "era":
            stated.decade = int(hint.value)  # type: ignore[arg-type]
        return Message(text=text, kind=kind, dropped=dropped, stated=stated)

    # -- the protocol -------------------------------------------------------------------
    def first(self) -> Message:
        """A vague request built from one attribute of the target."""
        found = self._pop(("category", "era"))
        opening = _OPENINGS[int(self.rng.integers(len(_OPENINGS)))]
        text = opening.format(hint=found[1] if found else "").strip()
        if not self.guard.clean(text):
            bare = [o.format(hint="").strip() for o in _OPENINGS]
            text = found[1] if found else (self._pick(bare) or "Recommend me something?")
        return self._message(text, "open", found[0] if found else None)

    def next(self, seen: Observation) -> Message:
        """One more hint, an answer to the agent's question, or a rejection."""
        if asks_question(seen):
            if _GENRE_Q.search(seen.reply):
                found = self._pop(("category",)) or self._pop()
            elif _ERA_Q.search(seen.reply):
                found = self._pop(("era",)) or self._pop()
            else:
                found = self._pop()
            if found is not None:
                return self._message(found[1], "answer", found[0])
        while self.queue:
            if self.queue[0].kind == "reject":
                self.queue.pop(0)
                rejection = self._rejection(seen)
                if rejection is not None:
                    msg = self._message(rejection[0], "reject")
                    if rejection[1]:
                        msg.stated.exclude = [rejection[1]]
                    return msg
                continue
            found = self._pop()
            if found is not None:
                return self._message(found[1], found[0].kind, found[0])
        rejection = self._rejection(seen)
        if rejection is not None:
            msg = self._message(rejection[0], "filler")
            if rejection[1]:
                msg.stated.exclude = [rejection[1]]
            return msg
        return self._message(self._pick(_FILLER) or "Anything?", "filler")


# -- the LLM simulator ----------------------------------------------------------------------
class SimulatorLLMSettings(BaseSettings):
    """Endpoint of the LLM simulator (``RECPILOT_SIM_LLM_*``); unset URL = the agent's."""

    model_config = SettingsConfigDict(env_prefix="RECPILOT_SIM_LLM_", extra="ignore")

    base_url: str | None = Field(default=None, description="OpenAI-compatible URL (…/v1).")
    model: str = Field(default="qwen2.5-coder-1.5b-instruct", description="Model name.")
    api_key: str = Field(default="none", description="API key of that endpoint.")
    temperature: float = Field(default=0.7, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(default=60, ge=8, description="Longest reply, tokens.")
    timeout_s: float = Field(default=60.0, gt=0, description="Per call, seconds.")


SIM_PROMPT = """You are a person chatting with a movie recommender. You have one movie in mind
and want the recommender to find it. What you know about it:
{facts}
Rules: never say its title or any word of its title (you do not remember the title).
Reply in one or two short sentences, as the user. Reveal one more thing you know per
turn. If the recommender asks a question, answer it. If its list is wrong, say what is
wrong with it. Do not recommend movies yourself."""


@dataclass
class LLMSimulator:
    """iEvaLM-style LLM seeker with the same leakage guard (module docstring).

    Args:
        target: the user and the target.
        client: an ``openai.OpenAI`` client for the simulator's endpoint.
        config: model, temperature, token limit.
        seed: run seed (sent as the request ``seed`` with the turn number).
        retries: regenerations of a leaking reply before the template fallback.
    """

    target: Target
    client: object
    config: SimulatorLLMSettings
    seed: int = 0
    retries: int = 2
    fallback: TemplateSimulator = field(init=False)
    history: list[dict[str, str]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.fallback = TemplateSimulator(self.target, self.seed)
        self.guard = self.fallback.guard

    def _facts(self) -> str:
        item = self.target.item
        lines = [f"- genres: {', '.join(item.categories) or 'unknown'}"]
        if item.year:
            lines.append(f"- released in {item.year}")
        if item.text:
            masked = item.text
            for word in sorted(self.guard.banned, key=len, reverse=True):
                masked = re.sub(rf"(?i)\b{re.escape(word)}\b", "…", masked)
            lines.append(f"- about it: {masked[:300]}")
        if self.target.cooccurring:
            lines.append(f"- you also liked: {self.target.cooccurring[0]}")
        return "\n".join(lines)

    def _ask(self, instruction: str) -> Message:
        messages = [{"role": "system", "content": SIM_PROMPT.format(facts=self._facts())}]
        messages += self.history + [{"role": "user", "content": instruction}]
        calls, ms, p_tok, c_tok, dropped = 0, 0.0, 0, 0, 0
        for attempt in range(self.retries + 1):
            started = time.perf_counter()
            try:
                out = self.client.chat.completions.create(  # type: ignore[attr-defined]
                    model=self.config.model,
                    messages=messages,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_tokens,
                    seed=self.seed * 1000 + len(self.history) * 10 + attempt,
                    timeout=self.config.timeout_s,
                )
            except Exception:  # an unreachable simulator falls back to the template
                ms += (time.perf_counter() - started) * 1000
                calls += 1
                break
            ms += (time.perf_counter() - started) * 1000
            calls += 1
            if out.usage is not None:
                p_tok += out.usage.prompt_tokens
                c_tok += out.usage.completion_tokens
            text = (out.choices[0].message.content or "").strip().strip('"')
            if text and self.guard.clean(text):
                self.history.append({"role": "assistant", "content": text})
                return Message(
                    text=text, kind="open" if len(self.history) == 1 else "llm",
                    dropped=dropped, sim_calls=calls, sim_ms=round(ms, 1),
                    sim_prompt_tokens=p_tok, sim_completion_tokens=c_tok,
                )  # fmt: skip
            dropped += 1
        return Message(
            text="", kind="filler", dropped=dropped, sim_calls=calls, sim_ms=round(ms, 1),
            sim_prompt_tokens=p_tok, sim_completion_tokens=c_tok,
        )  # fmt: skip

    def _or_template(self, msg: Message, template: Message) -> Message:
        if msg.text:
            return msg
        self.history.append({"role": "assistant", "content": template.text})
        return template.model_copy(
            update={
                "dropped": msg.dropped + template.dropped,
                "sim_calls": msg.sim_calls,
                "sim_ms": msg.sim_ms,
                "sim_prompt_tokens": msg.sim_prompt_tokens,
                "sim_completion_tokens": msg.sim_completion_tokens,
            }
        )

    def first(self) -> Message:
        """The LLM's opening request (template opening if it leaks every time)."""
        msg = self._ask("Start: ask the recommender for a movie, vaguely, with one thing you know.")
        return self._or_template(msg, self.fallback.first())

    def next(self, seen: Observation) -> Message:
        """The LLM's reply to the agent's turn (template hint if it leaks every time)."""
        shown = "; ".join(f"{i.title} ({i.year})" if i.year else i.title for i in seen.items)
        self.history.append({"role": "user", "content": seen.reply or f"Recommended: {shown}"})
        msg = self._ask("Reply to the recommender (none of its picks is your movie).")
        return self._or_template(msg, self.fallback.next(seen))


def display_title(title: str, year: int | None) -> str:
    """How a person writes a title: ``("Godfather, The", 1972)`` → ``"The Godfather (1972)"``."""
    name = clean_title(title)
    return f"{name} ({year})" if year else name
