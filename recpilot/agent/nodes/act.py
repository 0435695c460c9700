"""Act: run the controller's tool calls in order; hand a funnel request on to the funnel.

Non-funnel tools (item_info, compare, explain, feedback, profile, reply) answer here
from data and write their reply text. Items a tool names as liked, seen, disliked or
avoided join the thread's ``exclude_items`` — they never come back in this thread —
and so do the titles and franchises the message itself avoids ("I hate Star Trek"),
read by code whatever tools the controller chose (a controller that answers such a
message with ``profile`` or ``reply`` cannot let them back later). A
recommend or refine call becomes the turn's ``funnel`` request (with those exclusions),
which ``understand`` turns into the intent; without one the turn ends at ``respond``
with the tools' text only.
"""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from recpilot.agent.nodes.common import item_noun, record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Code, State, previous_turn
from recpilot.agent.tools import ToolContext, get_tool
from recpilot.data.catalogue import Constraints
from recpilot.data.preferences import read_titles


def talked_about(args: dict) -> str | None:
    """The item a tool call is about (its ``item``, else its first ``items`` entry), as
    the call names it ("#1", a title or an id), or None."""
    item = args.get("item")
    if isinstance(item, str) and item:
        return item
    items = args.get("items")
    return str(items[0]) if isinstance(items, list) and items else None


def act(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: run ``tool_calls``; write ``tool_replies``, ``funnel``, exclusions and
    ``focus`` (the item the turn talked about; cleared when the funnel shows a new list)."""
    started = time.perf_counter()
    svc = services_of(runtime)
    ctx = ToolContext(
        catalogue=svc.catalogue,
        services=svc,
        state=state,
        store=runtime.store if runtime is not None else None,
        user_id=state.get("user_id"),
        message=(state.get("message") or "").strip(),
        previous=previous_turn(state),
        noun=item_noun(svc),
    )
    replies: list[str] = []
    exclude: list[str] = read_titles(svc.catalogue, ctx.message).avoided if ctx.message else []
    dropped: list[str] = []
    notes: list[str] = []
    funnel = None
    pending = None
    focus = state.get("focus")
    for call in state.get("tool_calls") or []:
        tool = get_tool(call["name"])
        assert tool is not None  # validated by the controller
        args, _ = tool.validate(call["args"])
        focus = talked_about(call["args"]) or focus
        outcome = tool.bind(ctx).invoke(args.model_dump())
        if outcome.text:
            replies.append(outcome.text)
        exclude += [i for i in outcome.exclude_items if i not in exclude]
        dropped += outcome.dropped
        pending = outcome.pending or pending
        if outcome.funnel is not None:
            funnel = outcome.funnel
        notes.append(f"{call['name']}: {outcome.note}" + (
            f" (dropped {outcome.dropped})" if outcome.dropped else ""))  # fmt: skip
    thread = state.get("thread_constraints") or Constraints()
    update: dict = {"tool_replies": replies, "pending": pending, "dropped_ids": dropped}
    update["focus"] = None if funnel is not None else focus  # a new list: "#1" moves on
    if funnel is not None:
        funnel.exclude_items = list(dict.fromkeys([*funnel.exclude_items, *exclude]))
        update["funnel"] = funnel.model_dump()
    elif exclude:
        update["thread_constraints"] = thread.merged(Constraints(exclude_items=exclude))
    codes = [Code.TOOLS_RAN] + ([Code.REFS_DROPPED] if dropped else [])
    n = len(state.get("tool_calls") or [])
    update["stages"] = record(state, "act", started, n, note="; ".join(notes), codes=codes)
    return update
