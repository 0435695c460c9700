"""refine: change the previous recommendation — newer, older, more like a shown item,
none of these, or only the ones from a category / period.

It starts from the thread's previous funnel request (query, categories, seeds) and
changes one thing; without a previous recommendation it behaves like ``recommend``
with what it was given.
"""

from __future__ import annotations

from statistics import median
from typing import Literal

from pydantic import BaseModel, Field

from recpilot.agent.intent_rules import parse_constraints
from recpilot.agent.tools import register
from recpilot.agent.tools.base import AgentTool, FunnelRequest, ToolContext, ToolOutcome


class RefineArgs(BaseModel):
    """Arguments of ``refine``."""

    change: Literal["newer", "older", "more_like", "none_of_these", "only"] = Field(
        description="What to change in the previous recommendation."
    )
    item: str | None = Field(default=None, description="more_like: the shown item ('#2').")
    only: str = Field(default="", description="only: e.g. 'comedies', 'from the 90s'.")


def _years(ctx: ToolContext) -> list[int]:
    return [y for i in ctx.shown if (y := ctx.catalogue.get(i).year) is not None]


@register
class Refine(AgentTool):
    """See the module docstring."""

    name = "refine"
    description = (
        "Change the previous recommendations: newer, older, more_like a shown item, "
        "none_of_these (all new ones), or only (a category or period)."
    )
    args_schema = RefineArgs
    funnel = True

    def run(self, args: RefineArgs, ctx: ToolContext) -> ToolOutcome:  # type: ignore[override]
        """Build the changed :class:`FunnelRequest` from the previous turn."""
        prev = ctx.previous.intent if ctx.previous else None
        base = FunnelRequest(
            query=prev.query if prev else "",
            include_categories=list(prev.constraints.include_categories) if prev else [],
            seed_items=list(prev.liked_items) if prev else [],
            k=prev.k if prev else None,
            refine=True,
            note=f"refine: {args.change}",
        )
        dropped: list[str] = []
        years = _years(ctx)
        cons = prev.constraints if prev else None
        # newer / older than what was shown: past the median year of the shown items
        # (without shown years, past the previous request's bounds)
        if args.change == "newer":
            start = int(median(years)) + 1 if years else (
                cons.year_max + 1 if cons and cons.year_max else None)  # fmt: skip
            base.year_min, base.year_max, base.replace_years = start, None, True
        elif args.change == "older":
            end = int(median(years)) - 1 if years else (
                cons.year_min - 1 if cons and cons.year_min else None)  # fmt: skip
            base.year_min, base.year_max, base.replace_years = None, end, True
        elif args.change == "more_like":
            ids, failed = ctx.resolve([args.item or "#1"])
            dropped += failed
            base.seed_items = ids + [s for s in base.seed_items if s not in ids]
            base.query = base.query if not ids else ""
        elif args.change == "none_of_these":
            base.exclude_items = list(ctx.shown)
        elif args.change == "only":
            parsed = parse_constraints(args.only or ctx.message, ctx.catalogue)
            if parsed.include_categories:
                base.include_categories = parsed.include_categories
                base.replace_includes = True
            base.exclude_categories = parsed.exclude_categories
            if parsed.year_min is not None or parsed.year_max is not None:
                base.year_min, base.year_max = parsed.year_min, parsed.year_max
                base.replace_years = True
        return ToolOutcome(
            funnel=base, exclude_items=base.exclude_items, items=base.seed_items,
            dropped=dropped, note=base.note,
        )  # fmt: skip
