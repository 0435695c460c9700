"""profile: what the agent knows about the user; forget it, after confirmation.

``forget`` deletes the user's long-term profile (every store item under the user's
namespace: :func:`recpilot.stores.profiles.forget_profile`) only when the thread is
waiting for that confirmation (the previous turn asked and the user said yes); the
first request asks. It does not delete chat threads (the checkpoints, this thread
included), run traces or the service's feedback log — the replies say so and name
``recpilot profile forget`` / ``DELETE /v1/profiles/{user_id}``, which delete those too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from recpilot.agent.tools import register
from recpilot.agent.tools.base import AgentTool, ToolContext, ToolOutcome
from recpilot.stores.profiles import forget_profile, load_profile

FORGET = "forget"
_WHAT = "likes, dislikes, seen items, avoided categories, stated preferences and facts"
ASK_FORGET = (
    f"Should I delete your long-term profile ({_WHAT})? Answer 'yes' to confirm. "
    "Chat threads, run traces and logged feedback stay; `recpilot profile forget {user}` "
    "or DELETE /v1/profiles/{user} removes those too."
)
FORGOTTEN = (
    f"Done: I deleted your long-term profile ({_WHAT}; {{n}} stored record(s)). Chat "
    "threads, including this one, run traces and logged feedback are kept; "
    "`recpilot profile forget {user}` or DELETE /v1/profiles/{user} removes those too."
)


class ProfileArgs(BaseModel):
    """Arguments of ``profile``."""

    action: Literal["show", "forget"] = Field(default="show")
    confirm: bool = Field(default=False, description="forget: the user confirmed.")


@register
class Profile(AgentTool):
    """See the module docstring."""

    name = "profile"
    description = "Show what I know about the user, or forget it (asks to confirm first)."
    args_schema = ProfileArgs

    def run(self, args: ProfileArgs, ctx: ToolContext) -> ToolOutcome:  # type: ignore[override]
        """Show the profile, ask for confirmation, or forget."""
        if not ctx.user_id or ctx.store is None:
            return ToolOutcome(text="You're anonymous here, so I keep no profile about you.",
                               note="anonymous")  # fmt: skip
        if args.action == "forget":
            if args.confirm and ctx.state.get("pending") == FORGET:
                removed = forget_profile(ctx.store, ctx.user_id)
                return ToolOutcome(text=FORGOTTEN.format(n=removed, user=ctx.user_id),
                                   note=f"forgotten ({removed} record(s))")  # fmt: skip
            return ToolOutcome(text=ASK_FORGET.format(user=ctx.user_id), pending=FORGET,
                               note="asked to confirm")  # fmt: skip
        p = load_profile(ctx.store, ctx.user_id)
        if p.is_empty() and not p.seen:
            return ToolOutcome(text="I don't remember anything about you yet.", note="empty")
        lines = [f"What I remember about user {ctx.user_id}:"]
        for label, ids in (("liked", p.liked), ("disliked", p.disliked), ("seen", p.seen)):
            known = [ctx.label(i) for i in ids if ctx.catalogue.has(i)]
            if known:
                more = f" and {len(known) - 5} more" if len(known) > 5 else ""
                lines.append(f"- {label}: {', '.join(known[:5])}{more}")
        if p.avoid_categories:
            lines.append(f"- avoids: {', '.join(p.avoid_categories)}")
        if p.preferences:
            lines.append(f"- asked for: {'; '.join(p.preferences[-3:])}")
        if p.attributes:
            lines.append("- about you: " + ", ".join(f"{k} {v}" for k, v in p.attributes.items()))
        return ToolOutcome(text="\n".join(lines), items=[*p.liked, *p.disliked], note="shown")
