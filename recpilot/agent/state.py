"""The controller's typed state: the request, the intent, the plan, the candidate bus.

Candidates travel here as catalogue ids with per-stage scores; they never go
through an LLM except at fine ranking. Per-turn fields are reset by the caller at the
start of every run (see ``graph.turn_input``); ``messages``, ``thread_constraints``
and ``shown`` carry over between the turns of a chat thread.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
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
    source: Literal["llm", "rules", "none"] = "none"
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


class StageRecord(TypedDict, total=False):
    """What one node did: duration (ms), counts, fallback and a note for the trace."""

    stage: str
    ms: float
    n_out: int
    fell_back: bool
    note: str


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


class State(TypedDict, total=False):
    """The graph state. See the module docstring for what persists across turns."""

    # request
    user_id: str | None
    message: str | None
    k: int
    request_constraints: Constraints
    fine_mode: Literal["pointwise", "listwise", "off"] | None
    channels: list[str] | None  # fixed recall channels (evaluation); None = the plan decides
    sample_generation: bool | None  # cold path: LLM pseudo-interactions; None = settings
    # carried across turns of a thread
    messages: Annotated[list[AnyMessage], add_messages]
    thread_constraints: Constraints
    shown: Annotated[list[str], operator.add]
    # per turn
    profile: UserProfile | None  # long-term memory of user_id, loaded by understand
    pseudo_items: list[str]  # sample generation: validated ids seeding collaborative recall
    intent: Intent
    plan: Plan
    candidates: list[Candidate]
    items: list[RecommendedItem]
    reply: str
    stages: list[StageRecord]
    fallbacks: list[str]
    dropped_ids: list[str]
    llm_down: bool
