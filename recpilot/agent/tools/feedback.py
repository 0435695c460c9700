"""feedback: the user likes, dislikes or has seen shown or named items.

The items never come back in the thread (``exclude_items``); for a known user (an id
and a profile store) they also go into the long-term profile — liked ones seed later
recommendations, seen and disliked ones are never recommended again.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from recpilot.agent.tools import register
from recpilot.agent.tools.base import AgentTool, ToolContext, ToolOutcome
from recpilot.stores.profiles import UserProfile, update_profile


class FeedbackArgs(BaseModel):
    """Arguments of ``feedback``."""

    items: list[str] = Field(description="Titles or shown items ('#1', 'the last one').")
    kind: Literal["like", "dislike", "seen"] = Field(description="The user's reaction.")


@register
class Feedback(AgentTool):
    """See the module docstring."""

    name = "feedback"
    description = "Record that the user likes, dislikes or has already seen items."
    args_schema = FeedbackArgs

    def run(self, args: FeedbackArgs, ctx: ToolContext) -> ToolOutcome:  # type: ignore[override]
        """Exclude the items from the thread; update the stored profile of a known user.

        The profile is read, changed and written under the user's lock
        (:func:`recpilot.stores.profiles.update_profile`, as ``remember`` does), so two
        concurrent turns of one user never lose each other's feedback.
        """
        ids, failed = ctx.resolve(args.items)
        if not ids:
            return ToolOutcome(text="I couldn't tell which item you meant.", dropped=failed,
                               note="no item resolved")  # fmt: skip
        stored = ""
        if ctx.store is not None and ctx.user_id:

            def fold(profile: UserProfile) -> bool:  # the stored profile, under the user's lock
                before = profile.model_dump()
                for item_id in ids:
                    {"like": profile.like, "dislike": profile.dislike,
                     "seen": profile.mark_seen}[args.kind](item_id)  # fmt: skip
                return profile.model_dump() != before

            update_profile(ctx.store, ctx.user_id, fold)  # a concurrent turn's like survives
            stored = " and in your profile"
        verb = {"like": "you liked", "dislike": "you didn't like", "seen": "you've seen"}[args.kind]
        names = ", ".join(ctx.label(i) for i in ids)
        them = "it" if len(ids) == 1 else "them"
        text = f"Noted{stored}: {verb} {names}. I won't recommend {them} again."
        return ToolOutcome(text=text, exclude_items=ids, items=ids, dropped=failed,
                           note=f"{args.kind}: {ids}")  # fmt: skip
