"""compare: two to four items side by side, from the catalogue only."""

from __future__ import annotations

from pydantic import BaseModel, Field

from recpilot.agent.tools import register
from recpilot.agent.tools.base import AgentTool, ToolContext, ToolOutcome
from recpilot.agent.tools.item_info import fact_line


class CompareArgs(BaseModel):
    """Arguments of ``compare``."""

    items: list[str] = Field(description="Two to four titles or shown items ('#1', '#3').")


@register
class Compare(AgentTool):
    """See the module docstring."""

    name = "compare"
    description = "Compare two to four items side by side (year, categories, ratings)."
    args_schema = CompareArgs

    def run(self, args: CompareArgs, ctx: ToolContext) -> ToolOutcome:  # type: ignore[override]
        """One fact line per item, then what they share."""
        ids, failed = ctx.resolve(args.items[:4])
        if len(ids) < 2:
            known = ", ".join(ctx.label(i) for i in ids)
            missing = ", ".join(repr(f) for f in failed) or "a second item"
            text = f"I can only compare items in my data; I could not find {missing}."
            if known:
                text += f" (Found: {known}.)"
            return ToolOutcome(text=text, items=ids, dropped=failed, note="too few items")
        lines = [f"- {fact_line(ctx, i, text_chars=120)}" for i in ids]
        shared = set(ctx.catalogue.get(ids[0]).categories)
        for i in ids[1:]:
            shared &= set(ctx.catalogue.get(i).categories)
        tail = f"In common: {', '.join(sorted(shared))}." if shared else "No category in common."
        return ToolOutcome(text="\n".join([*lines, tail]), items=ids, dropped=failed,
                           note=f"compared {ids}")  # fmt: skip
