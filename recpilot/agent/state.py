"""The controller's typed state, in three parts: the turn's input, the thread's memory,
and the turn's scratch.

- :class:`TurnInput` — the request of this turn (user, message, k, overrides).
- :class:`ThreadMemory` — what carries over between the turns of a chat thread: the
  messages, the thread's constraints, the items already shown, and an explicit
  :class:`PreviousTurn` (the intent and items a follow-up such as "more like that"
  refers to).
- :class:`TurnScratch` — everything a turn computes (intent, plan, the candidate bus,
  the answer, stage records, fallbacks). ``graph.turn_input`` resets *every* field of
  it from its annotations, so a new field cannot leak into the next turn; the list
  fields have an appending reducer, so a node returns only what it adds.

Candidates travel here as catalogue ids with per-stage scores; they never go through
an LLM except at fine ranking. Stage records carry structured reason codes
(:class:`Code`) so traces and tests need not parse their notes.
"""

from __future__ import annotations

import functools
import operator
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from langgraph.types import Overwrite
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from recpilot.data.catalogue import Constraints
from recpilot.stores.profiles import UserProfile

Path = Literal["warm", "cold"]


class Intent(BaseModel):
    """What the user asked for, as understood from the message (LLM or rules)."""

    query: str = Field(default="", description="Text for semantic recall ('' = none).")
    constraints: Constraints = Field(default_factory=Constraints)
    liked_items: list[str] = Field(default_factory=list, description="Catalogue ids named.")
    lifted_categories: list[str] = Field(
        default_factory=list, description="Exclusions the user lifted ('horror is fine again')."
    )
    facts: dict[str, str] = Field(
        default_factory=dict, description="Facts about the user: audience, age_band."
    )
    k: int | None = Field(default=None, description="Items the user asked for ('3 comedies').")
    source: Literal["llm", "rules", "none", "agent"] = "none"
    note: str = ""


class Plan(BaseModel):
    """Which stages run, with what budgets, and why."""

    path: Path
    channels: list[str]
    per_channel: int = Field(ge=1)
    coarse_keep: int = Field(ge=1)
    fine_mode: Literal["pointwise", "listwise", "off"]
    sample_generation: bool = Field(
        default=False, description="Cold path: the LLM proposes pseudo-interactions first."
    )
    reason: str = ""
    source: Literal["llm", "rules", "request"] = "rules"


class Candidate(TypedDict, total=False):
    """One entry on the candidate bus: id, provenance, and a score per stage."""

    item_id: str
    sources: dict[str, float]
    seed_item: str | None
    coarse: float
    fine: float | None
    final: float


class Code(StrEnum):
    """Structured reason codes of a stage record (what happened, without the prose)."""

    LLM_FAILED = "llm_failed"  # an LLM call failed or answered invalid output
    LLM_UNREACHABLE = "llm_unreachable"  # the backend was unreachable or timed out
    LLM_SKIPPED = "llm_skipped"  # the LLM was down earlier in the run (or off)
    RULES_ONLY = "rules_only"  # no LLM reading: the rules decided
    LLM_CONSTRAINTS_REJECTED = "llm_constraints_rejected"  # they matched no item
    FOLLOW_UP = "follow_up"  # "more like that": previous query and items reused
    EXCLUSION_LIFTED = "exclusion_lifted"
    PROFILE_APPLIED = "profile_applied"  # the long-term profile shaped the turn
    PATH_WARM = "path_warm"
    PATH_COLD = "path_cold"
    CHANNELS_FIXED = "channels_fixed"  # the request fixed the recall channels
    BUDGET_CLAMPED = "budget_clamped"  # the LLM's per-channel budget was out of range
    CHANNELS_IGNORED = "channels_ignored"  # the LLM chose channels without an input
    SAMPLE_GENERATION = "sample_generation"
    NO_CANDIDATES = "no_candidates"
    CHANNEL_FAILED = "channel_failed"  # a recall channel's backend failed (e.g. Chroma down)
    SCORED_BY_MODEL = "scored_by_model"  # coarse: the coarse model had a user state
    SCORED_BY_POPULARITY = "scored_by_popularity"
    QUERY_SIMILARITY = "query_similarity"
    INVALID_IDS_DROPPED = "invalid_ids_dropped"
    PROFILE_UPDATED = "profile_updated"
    ANONYMOUS = "anonymous"
    CONTROLLER_LLM = "controller_llm"  # the LLM chose this turn's tools
    CONTROLLER_RULES = "controller_rules"  # the rules controller chose them
    ARGS_REPAIRED = "args_repaired"  # invalid tool arguments were dropped or fixed
    REFS_DROPPED = "refs_dropped"  # item references that resolved to no catalogue item
    TOOLS_RAN = "tools_ran"


class StageRecord(TypedDict, total=False):
    """What one node did: duration (ms), counts, fallback, reason codes and a note.

    Attributes:
        reads: the state fields the node read (filled in by the graph's node wrapper).
    """

    stage: str
    ms: float
    n_out: int
    fell_back: bool
    codes: list[str]
    note: str
    reads: list[str]


class RecommendedItem(BaseModel):
    """One recommendation as returned to the user."""

    rank: int
    item_id: str
    title: str
    year: int | None
    categories: list[str]
    score: float
    reason: str
    sources: list[str]


class ShownDetail(BaseModel):
    """How one shown item was found and scored (what the ``explain`` tool reads).

    Attributes:
        sources: recall channel → its score; seed_item: the liked item an i2i hit neighbours;
        coarse, fine, final: the stage scores (fine None when fine ranking did not score it).
    """

    item_id: str
    sources: dict[str, float] = Field(default_factory=dict)
    seed_item: str | None = None
    coarse: float | None = None
    fine: float | None = None
    final: float | None = None
    reason: str = ""


class PreviousTurn(BaseModel):
    """What a follow-up turn refers to: the previous turn's intent and the items it showed.

    Attributes:
        details: per shown item, its channels and stage scores (``explain``).
        channels: the recall channels the previous funnel run used.
    """

    intent: Intent
    item_ids: list[str] = Field(default_factory=list)
    details: list[ShownDetail] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)


def previous_turn(state: Any) -> PreviousTurn | None:
    """The thread's previous turn, or None; a checkpoint may hand it back as a plain dict."""
    value = state.get("previous")
    if value is None or isinstance(value, PreviousTurn):
        return value
    return PreviousTurn.model_validate(value)


def extend(old: list | None, new: list | None) -> list:
    """Reducer: append ``new`` to ``old`` (``graph.turn_input`` resets with ``Overwrite``)."""
    return [*(old or []), *(new or [])]


def either(old: bool | None, new: bool | None) -> bool:
    """Reducer: once true in a turn, stays true until the next turn resets it."""
    return bool(old) or bool(new)


class TurnInput(TypedDict, total=False):
    """The request of one turn."""

    turn_id: str  # unique per run; keys the per-turn context (``agent.context``)
    user_id: str | None
    message: str | None
    k: int
    request_constraints: Constraints
    fine_mode: Literal["pointwise", "listwise", "off"] | None
    channels: list[str] | None  # fixed recall channels (evaluation); None = the plan decides
    sample_generation: bool | None  # cold path: LLM pseudo-interactions; None = settings


class ThreadMemory(TypedDict, total=False):
    """What carries over between the turns of a thread."""

    messages: Annotated[list[AnyMessage], add_messages]
    thread_constraints: Constraints
    shown: Annotated[list[str], operator.add]
    previous: PreviousTurn | None  # written by respond, read by the next turn
    pending: str | None  # a question awaiting the user's answer ("forget": confirm deletion)
    focus: str | None  # the item the thread last talked about ("it" in "compare it with #2")


class TurnScratch(TypedDict, total=False):
    """What one turn computes; reset at the start of every turn (``scratch_reset``)."""

    profile: UserProfile | None  # long-term memory of user_id, loaded by understand
    pseudo_items: list[str]  # sample generation: validated ids seeding collaborative recall
    tool_calls: list[dict]  # the controller's validated choice: {name, args, source}
    controller: dict | None  # how it chose: source, repairs, dropped, fallback
    funnel: dict | None  # the funnel request a recommend/refine tool produced
    tool_replies: Annotated[list[str], extend]  # text of the non-funnel tools, in order
    intent: Intent | None
    plan: Plan | None
    candidates: list[Candidate]
    items: list[RecommendedItem]
    reply: str | None
    stages: Annotated[list[StageRecord], extend]
    fallbacks: Annotated[list[str], extend]
    dropped_ids: Annotated[list[str], extend]
    llm_down: Annotated[bool, either]


class State(TurnInput, ThreadMemory, TurnScratch, total=False):
    """The graph state: input + thread memory + turn scratch (see the module docstring)."""


def scratch_reset() -> dict[str, Any]:
    """A reset of every :class:`TurnScratch` field, derived from its annotations.

    Lists start empty, ``llm_down`` false, everything else None; fields with a reducer
    are reset with ``Overwrite`` so the reducer does not append to last turn's value.
    """
    out: dict[str, Any] = {}
    for name, kind, reduced in _scratch_fields():
        value: Any = [] if kind == "list" else (False if kind == "bool" else None)
        out[name] = Overwrite(value) if reduced else value
    return out


@functools.cache
def _scratch_fields() -> tuple[tuple[str, str, bool], ...]:
    """``(name, "list" | "bool" | "other", has a reducer)`` per :class:`TurnScratch` field,
    read from the annotations once (``get_type_hints`` was ~7 % of a graph run's CPU in an
    eval, cProfile)."""
    fields = []
    for name, hint in get_type_hints(TurnScratch, include_extras=True).items():
        reduced = get_origin(hint) is Annotated
        base = get_args(hint)[0] if reduced else hint
        origin = get_origin(base) or base
        kind = "list" if origin is list else ("bool" if base is bool else "other")
        fields.append((name, kind, reduced))
    return tuple(fields)
