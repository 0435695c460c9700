"""recommend: run the recall → coarse → fine funnel for a described request.

Hard constraints filter (include/exclude categories, year range); soft ones rank
(boost/penalize categories); liked titles seed i2i recall and the user state; avoided
titles and franchises (every title starting with the name) never come back in the
thread, nor do the liked titles named (the user knows them).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from recpilot.agent.tools import register
from recpilot.agent.tools.base import AgentTool, FunnelRequest, ToolContext, ToolOutcome
from recpilot.data.mentions import title_index

MAX_K = 50


class RecommendArgs(BaseModel):
    """Arguments of ``recommend``."""

    query: str = Field(default="", description="What kind of item, in the user's words.")
    include_categories: list[str] = Field(default_factory=list, description="Must have one.")
    exclude_categories: list[str] = Field(default_factory=list, description="Must have none.")
    year_min: int | None = Field(default=None, description="Earliest release year.")
    year_max: int | None = Field(default=None, description="Latest release year.")
    boost_categories: list[str] = Field(default_factory=list, description="Soft: prefer.")
    penalize_categories: list[str] = Field(default_factory=list, description="Soft: rather not.")
    like_titles: list[str] = Field(default_factory=list, description="Titles the user likes.")
    avoid_titles: list[str] = Field(default_factory=list, description="Titles/franchises to avoid.")
    k: int | None = Field(default=None, description="How many items the user asked for.")
    fine_mode: Literal["pointwise", "listwise", "off"] | None = None


def categories(names: list[str], ctx: ToolContext, dropped: list[str]) -> list[str]:
    """Names in the catalogue's spelling; unknown ones go to ``dropped``."""
    out: list[str] = []
    for name in names:
        found = ctx.catalogue.normalize_category(str(name))
        if found is None:
            dropped.append(f"category {name!r}")
        elif found not in out:
            out.append(found)
    return out


def avoided(names: list[str], ctx: ToolContext, dropped: list[str]) -> list[str]:
    """Ids of avoided titles: a franchise name gives all its titles, else one title."""
    ids: list[str] = []
    index = title_index(ctx.catalogue)
    for name in names:
        found = index.franchise(str(name))
        if not found:
            one, failed = ctx.resolve([str(name)])
            found, _ = one, dropped.extend(failed)
        ids += [i for i in found if i not in ids]
    return ids


@register
class Recommend(AgentTool):
    """See the module docstring."""

    name = "recommend"
    description = (
        "Recommend items for a described request: query text, hard include/exclude "
        "categories, year range, soft boost/penalize categories, liked titles as seeds, "
        "titles or franchises to avoid, how many (k)."
    )
    args_schema = RecommendArgs
    funnel = True

    def run(self, args: RecommendArgs, ctx: ToolContext) -> ToolOutcome:  # type: ignore[override]
        """Validate against the catalogue and build the :class:`FunnelRequest`."""
        dropped: list[str] = []
        seeds, failed = ctx.resolve(args.like_titles)
        dropped += [f"title {f!r}" for f in failed]
        avoid = avoided(args.avoid_titles, ctx, dropped)
        lo, hi = args.year_min, args.year_max
        if lo is not None and hi is not None and lo > hi:
            dropped.append(f"years {lo}>{hi}")
            lo = hi = None
        k = min(max(args.k, 1), MAX_K) if args.k else None
        exclude = categories(args.exclude_categories, ctx, dropped)
        request = FunnelRequest(
            query=args.query.strip()[:300],
            include_categories=[c for c in categories(args.include_categories, ctx, dropped)
                                if c not in exclude],
            exclude_categories=exclude,
            year_min=lo,
            year_max=hi,
            replace_years=lo is not None or hi is not None,
            replace_includes=bool(args.include_categories),
            boost_categories=categories(args.boost_categories, ctx, dropped),
            penalize_categories=categories(args.penalize_categories, ctx, dropped),
            seed_items=[s for s in seeds if s not in avoid],
            exclude_items=list(dict.fromkeys([*seeds, *avoid])),
            k=k,
            fine_mode=args.fine_mode,
            note="recommend",
        )  # fmt: skip
        return ToolOutcome(
            funnel=request, exclude_items=request.exclude_items, items=seeds, dropped=dropped,
            note=f"seeds {seeds}, avoid {len(avoid)} item(s)",
        )  # fmt: skip
