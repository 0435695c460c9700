"""The agent-tool contract: a name, a description, a pydantic argument schema and ``run``.

Every tool the controller can choose (recommend, refine, item_info, compare, explain,
feedback, profile, reply) is one :class:`AgentTool` subclass in its own module,
registered with :func:`recpilot.agent.tools.register`; a new tool is one file. The
controller sees them as LangChain tools (:meth:`AgentTool.bind`: ``StructuredTool`` with
the same name, description and ``args_schema``) and as the JSON-schema alternative
(:func:`recpilot.agent.tools.calls_schema`).

A tool never calls the LLM itself in the default setup (one LLM call per turn is the
budget on the embedded model): it answers from the catalogue, the thread's shown items,
the previous run's stage records or the profile store, and returns a
:class:`ToolOutcome`. The funnel tools (recommend, refine) return a
:class:`FunnelRequest` that the graph's funnel nodes then run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from langchain_core.tools import StructuredTool
from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field, ValidationError

from recpilot.agent.refs import resolve_items
from recpilot.agent.state import PreviousTurn
from recpilot.data.catalogue import Catalogue


class FunnelRequest(BaseModel):
    """What the recall → coarse → fine funnel is asked to do this turn (validated ids and
    categories only; built by the recommend and refine tools).

    Attributes:
        query: text for semantic recall ("" = none).
        include_categories / exclude_categories: hard filters (catalogue spelling).
        year_min / year_max: hard inclusive bounds; ``replace_years`` drops the thread's
            earlier bounds instead of tightening them ("something newer").
        boost_categories / penalize_categories: soft preferences (ranked up / down).
        seed_items: liked items that seed i2i and the user state.
        exclude_items: items never to show in this thread (named, seen, avoided).
        k: items wanted (None = the request's k); fine_mode: override or None.
        refine: True when the request changes the previous list (the refine tool): its
            query is the previous turn's, kept as is and never read as a follow-up.
        note: one line for the trace.
    """

    query: str = ""
    include_categories: list[str] = Field(default_factory=list)
    exclude_categories: list[str] = Field(default_factory=list)
    year_min: int | None = None
    year_max: int | None = None
    replace_years: bool = False
    replace_includes: bool = False
    boost_categories: list[str] = Field(default_factory=list)
    penalize_categories: list[str] = Field(default_factory=list)
    seed_items: list[str] = Field(default_factory=list)
    exclude_items: list[str] = Field(default_factory=list)
    k: int | None = None
    fine_mode: str | None = None
    refine: bool = False
    note: str = ""


class ToolOutcome(BaseModel):
    """What one tool call did.

    Attributes:
        text: reply text for the user (template-built from data; "" for funnel tools).
        funnel: the funnel request (recommend, refine) or None.
        exclude_items: ids never to show again in this thread (named, seen, disliked).
        items: ids the text talks about (checked: all in the catalogue).
        pending: a question now awaiting an answer ("forget"), or None.
        dropped: references that resolved to no item (recorded in the trace).
        note: one line for the trace.
    """

    text: str = ""
    funnel: FunnelRequest | None = None
    exclude_items: list[str] = Field(default_factory=list)
    items: list[str] = Field(default_factory=list)
    pending: str | None = None
    dropped: list[str] = Field(default_factory=list)
    note: str = ""


@dataclass
class ToolContext:
    """What a tool may read and write in a turn.

    Attributes:
        catalogue: the loaded catalogue; services: the run's ``Services``.
        state: the graph state (read only); store: the profile store or None.
        user_id: the requesting user or None (anonymous).
        message: the user's text of this turn.
        previous: the thread's previous funnel turn (shown items, details) or None.
        noun: what an item is called in this dataset ("movie").
    """

    catalogue: Catalogue
    services: Any
    state: Any
    store: BaseStore | None
    user_id: str | None
    message: str
    previous: PreviousTurn | None
    noun: str = "item"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shown(self) -> list[str]:
        """Ids shown in the previous funnel turn, in the order the user saw them."""
        return list(self.previous.item_ids) if self.previous else []

    def resolve(self, refs: list[str]) -> tuple[list[str], list[str]]:
        """(catalogue ids, unresolved refs) for references, see :func:`resolve_items`."""
        return resolve_items(refs, self.shown, self.catalogue)

    def label(self, item_id: str) -> str:
        """ "Title (year)" of a catalogue item."""
        item = self.catalogue.get(item_id)
        return (
            f"{item.title} ({item.year})"
            if item.year and str(item.year) not in item.title
            else item.title
        )


class AgentTool:
    """Base class of the agent's tools (see the module docstring).

    Class attributes:
        name: the tool name the controller uses (unique in the registry).
        description: one or two sentences the LLM reads to choose the tool.
        args_schema: the pydantic model of the arguments.
        funnel: True when the tool runs the recommendation funnel.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    args_schema: ClassVar[type[BaseModel]]
    funnel: ClassVar[bool] = False

    def run(self, args: BaseModel, ctx: ToolContext) -> ToolOutcome:  # pragma: no cover
        """Do the tool's work for validated ``args``; never raises on bad references
        (unresolved ones go to ``ToolOutcome.dropped``)."""
        raise NotImplementedError

    def validate(self, raw: dict[str, Any]) -> tuple[BaseModel, list[str]]:
        """Validate raw arguments; fields that fail are dropped (repaired) and named.

        Returns:
            (the validated arguments, the names of dropped fields with the reason).

        Raises:
            ValidationError: even the repaired arguments are invalid (a required field).
        """
        known = set(self.args_schema.model_fields)
        data = {k: v for k, v in (raw or {}).items() if k in known}
        repairs = [f"{k}: unknown argument" for k in (raw or {}) if k not in known]
        for _ in range(len(known) + 1):
            try:
                return self.args_schema.model_validate(data), repairs
            except ValidationError as err:
                bad = {str(e["loc"][0]) for e in err.errors() if e["loc"]}
                bad &= set(data)
                if not bad:
                    raise
                for k in sorted(bad):
                    repairs.append(f"{k}: invalid value {data.pop(k)!r}")
        return self.args_schema.model_validate(data), repairs

    def bind(self, ctx: ToolContext) -> StructuredTool:
        """This tool as a LangChain ``StructuredTool`` bound to ``ctx`` (invoke → outcome)."""

        def call(**kwargs: Any) -> ToolOutcome:
            return self.run(self.args_schema(**kwargs), ctx)

        return StructuredTool.from_function(
            func=call, name=self.name, description=self.description,
            args_schema=self.args_schema,
        )  # fmt: skip

    def as_langchain_tool(self) -> StructuredTool:
        """The tool's LangChain form for binding to a chat model (schema only)."""

        def unbound(**kwargs: Any) -> str:
            raise RuntimeError(f"{self.name} runs through the agent's act node")

        return StructuredTool.from_function(
            func=unbound, name=self.name, description=self.description,
            args_schema=self.args_schema,
        )  # fmt: skip
