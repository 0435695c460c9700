"""Remember: write what this turn taught about the user into their long-term profile.

Runs after ``respond`` when the graph has a store and the request has a user id
(anonymous requests are not remembered). From the turn it keeps:

- exclusions the user stated, as read by the *rules* (an LLM misreading must not
  become a permanent ban), and exclusions they lifted;
- titles the user named as liked (resolved catalogue ids; not the seeds a "more like
  that" follow-up borrows from the previous answer);
- the request text as a stated preference, and facts (audience, age band).

Explicit feedback (``recpilot feedback``) and the LLM interest summary
(``recpilot profile summarize``) are written by :mod:`recpilot.agent.profile_ops`.
"""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from recpilot.agent.intent_rules import parse_constraints
from recpilot.agent.nodes.common import record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Code, State
from recpilot.stores.profiles import UserProfile, update_profile


def apply_turn(profile: UserProfile, state: State, stated_exclusions: list[str]) -> list[str]:
    """Fold one turn into ``profile`` (in place).

    Args:
        profile: the user's profile.
        state: the graph state after ``respond``.
        stated_exclusions: categories the rules found excluded in the message.

    Returns:
        What changed, as short phrases for the trace (empty: nothing).
    """
    intent = state["intent"]
    changes = []
    before = profile.model_copy(deep=True)
    profile.avoid(stated_exclusions)
    profile.lift(intent.lifted_categories)
    if not intent.note.startswith("follow-up"):
        for item_id in intent.liked_items:
            profile.like(item_id)
        if intent.query:
            profile.prefer(intent.query)
    profile.attributes = {**profile.attributes, **intent.facts}
    if profile.avoid_categories != before.avoid_categories:
        changes.append(f"avoids {profile.avoid_categories or 'nothing'}")
    if profile.liked != before.liked:
        changes.append(f"liked +{len(set(profile.liked) - set(before.liked))}")
    if profile.preferences != before.preferences:
        changes.append("preference noted")
    if profile.attributes != before.attributes:
        changes.append(f"attributes {profile.attributes}")
    return changes


def has_news(state: State, stated_exclusions: list[str]) -> bool:
    """False when :func:`apply_turn` cannot change any profile: the turn stated no
    exclusion, lifted none, named no liked item, asked for nothing and told no fact (an
    orchestrated call without a message, for one). Such a turn skips the user's lock and
    the profile's read and write — on PostgreSQL an advisory lock and two queries."""
    intent = state["intent"]
    fresh = not intent.note.startswith("follow-up")
    return bool(
        stated_exclusions
        or intent.lifted_categories
        or intent.facts
        or (fresh and (intent.liked_items or intent.query))
    )


def remember(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: update the user's profile in the store (no-op without store or user)."""
    store = runtime.store if runtime is not None else None
    user_id = state.get("user_id")
    if store is None:
        return {}
    started = time.perf_counter()
    if not user_id:
        return {
            "stages": record(
                state, "remember", started, 0, note="anonymous: not stored", codes=[Code.ANONYMOUS]
            )
        }
    if state.get("intent") is None:  # a tools-only turn: feedback/profile tools wrote already
        return {"stages": record(state, "remember", started, 0, note="tools only")}
    svc = services_of(runtime)
    message = state.get("message") or ""
    stated = parse_constraints(message, svc.catalogue).exclude_categories if message else []
    if not has_news(state, stated):
        return {"stages": record(state, "remember", started, 0, note="nothing to remember")}
    changes: list[str] = []

    def fold(profile: UserProfile) -> bool:  # on the stored profile, under the user's lock
        changes[:] = apply_turn(profile, state, stated)
        return bool(changes)

    update_profile(store, user_id, fold)  # re-read: feedback may have landed meanwhile
    note = "; ".join(changes) if changes else "nothing new"
    codes = [Code.PROFILE_UPDATED] if changes else []
    return {"stages": record(state, "remember", started, len(changes), note=note, codes=codes)}
