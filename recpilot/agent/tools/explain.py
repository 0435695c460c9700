"""explain: why a shown item was recommended — read from the previous run's records.

The facts come from the thread's previous funnel turn (:class:`ShownDetail`): which
recall channels found the item, the liked item an i2i hit neighbours, its coarse, fine
(LLM) and final scores, and its rank; nothing is generated.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from recpilot.agent.tools import register
from recpilot.agent.tools.base import AgentTool, ToolContext, ToolOutcome


class ExplainArgs(BaseModel):
    """Arguments of ``explain``."""

    item: str = Field(default="#1", description="The shown item to explain ('#3', a title).")


@register
class Explain(AgentTool):
    """See the module docstring."""

    name = "explain"
    description = "Explain why a shown item was recommended (channels, seeds, stage scores)."
    args_schema = ExplainArgs

    def run(self, args: ExplainArgs, ctx: ToolContext) -> ToolOutcome:  # type: ignore[override]
        """The item's provenance and scores, or why there is none."""
        if not ctx.previous or not ctx.previous.item_ids:
            return ToolOutcome(text="I haven't recommended anything in this chat yet.",
                               note="nothing shown")  # fmt: skip
        ids, failed = ctx.resolve([args.item])
        details = {d.item_id: d for d in ctx.previous.details}
        if not ids or ids[0] not in ctx.shown:
            name = ctx.label(ids[0]) if ids else repr(args.item)
            return ToolOutcome(text=f"{name} was not among my last recommendations.",
                               dropped=failed, note="not shown")  # fmt: skip
        item_id = ids[0]
        rank = ctx.shown.index(item_id) + 1
        d = details.get(item_id)
        text = f"{ctx.label(item_id)} was #{rank}."
        if d is not None:
            if d.sources:
                text += " Found by " + ", ".join(sorted(d.sources)) + " recall"
                if d.seed_item and ctx.catalogue.has(d.seed_item):
                    text += f" (a neighbour of {ctx.label(d.seed_item)}, which you liked)"
                text += "."
            scores = []
            if d.coarse is not None:
                scores.append(f"coarse score {d.coarse:.3f}")
            if d.fine is not None:
                scores.append(f"LLM fit {d.fine:.2f}")
            if d.final is not None:
                scores.append(f"final {d.final:.3f}")
            if scores:
                text += " " + ", ".join(scores).capitalize() + "."
            if d.reason:
                text += f" {d.reason}"
        return ToolOutcome(text=text, items=[item_id], note=f"explained {item_id}")
