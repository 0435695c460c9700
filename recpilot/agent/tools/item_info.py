"""item_info: what the data says about one item — answered only from the catalogue.

The answer is built from :func:`recpilot.content.facts.item_facts` (title, year,
categories, the item's own text, rating statistics); an item that is not in the
catalogue gets "not in my data". No LLM call: a grounded LLM description is
``recpilot describe``'s job.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from recpilot.agent.tools import register
from recpilot.agent.tools.base import AgentTool, ToolContext, ToolOutcome
from recpilot.content.facts import item_facts

TEXT_CHARS = 300  # characters of the item's own text quoted


def fact_line(ctx: ToolContext, item_id: str, text_chars: int = TEXT_CHARS) -> str:
    """One grounded paragraph about ``item_id`` (only catalogue facts)."""
    facts = item_facts(ctx.catalogue, item_id, ctx.noun)
    parts = [f"{ctx.label(item_id)}"]
    if facts.categories:
        parts.append("categories: " + ", ".join(facts.categories))
    stats = f"{facts.n_ratings} ratings"
    if facts.mean_rating is not None and facts.scale_max:
        stats += f", mean {facts.mean_rating:.1f}/{facts.scale_max:g}"
    parts.append(stats)
    line = "; ".join(parts) + "."
    text = re.sub(r"\s+", " ", facts.text).strip()
    if text and text_chars:
        cut = text[:text_chars]
        if len(text) > text_chars:
            cut = cut.rsplit(" ", 1)[0] + " …"
        line += f" {cut}"
    return line


class ItemInfoArgs(BaseModel):
    """Arguments of ``item_info``."""

    item: str = Field(description="A title, or a shown item ('#2').")


@register
class ItemInfo(AgentTool):
    """See the module docstring."""

    name = "item_info"
    description = "Facts about one item (year, categories, text, ratings) from the data."
    args_schema = ItemInfoArgs

    def run(self, args: ItemInfoArgs, ctx: ToolContext) -> ToolOutcome:  # type: ignore[override]
        """The item's facts, or "not in my data"."""
        ids, failed = ctx.resolve([args.item])
        if not ids:
            return ToolOutcome(
                text=f"{args.item!r} is not in my data, so I can't say anything about it.",
                dropped=failed, note="not in the catalogue",
            )  # fmt: skip
        return ToolOutcome(text=fact_line(ctx, ids[0]), items=ids, note=f"item {ids[0]}")
