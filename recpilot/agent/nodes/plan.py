"""Plan: which recall channels run, with what budgets, on the warm or the cold path.

The path is a fact, not a choice: a user the collaborative model was trained on is
*warm*; anyone else (unknown id, or no id) is *cold* and is served from the
conversation — the text query, the items they named, and a popularity prior inside
the requested categories. Within the path, the LLM picks the channels and the
per-channel budget under a JSON schema (channels are an ``enum``); its choice is
validated against what the request can feed (no i2i without liked items, …). The
deterministic plan (:func:`rules_plan`) is used when the planner is set to rules,
when the LLM is off or down, or when its answer is invalid.
"""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from recpilot.agent.nodes.common import record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Code, Plan, State
from recpilot.funnel import recall as channels_registry
from recpilot.funnel.recall import RecallSignals
from recpilot.llm.client import LLMError
from recpilot.prompts import load_prompt

PER_CHANNEL_RANGE = (20, 300)  # items per channel the plan may ask for

#: LLM calls a fine-ranking mode costs, in order: a controller may pick a cheaper mode
#: than ``RECPILOT_FINE_MODE``, not a dearer one (pointwise is one call per candidate).
FINE_COST = {"off": 0, "listwise": 1, "pointwise": 2}


def fine_mode_for(request: str | None, controller: str | None, configured: str, llm: bool) -> str:
    """The turn's fine-ranking mode.

    Args:
        request: the caller's ``fine_mode`` (API/CLI), which wins.
        controller: the mode the controller's ``recommend``/``refine`` call asked for; used
            only when it costs no more LLM calls than ``configured`` (:data:`FINE_COST`).
        configured: ``RECPILOT_FINE_MODE``.
        llm: whether an LLM is configured (without one: ``"off"``).

    Returns:
        ``"off"``, ``"listwise"`` or ``"pointwise"``.
    """
    if not llm:
        return "off"
    if controller and FINE_COST.get(controller, 99) > FINE_COST.get(configured, 0):
        controller = None
    return request or controller or configured


def plan_schema() -> dict:
    """JSON schema of the LLM's plan; ``channels`` is an enum of the registered channels."""
    names = channels_registry.channel_names()
    lo, hi = PER_CHANNEL_RANGE
    return {
        "type": "object",
        "properties": {
            "channels": {
                "type": "array",
                "items": {"type": "string", "enum": names},
                "minItems": 1,
                "maxItems": len(names),
            },
            "per_channel": {"type": "integer", "minimum": lo, "maximum": hi},
        },
        "required": ["channels", "per_channel"],
    }


def plan_answer_schema() -> dict:
    """:func:`plan_schema` without the ``per_channel`` bounds.

    The answer is validated without them and then clamped into them: the grammar the
    embedded server enforces cannot carry integer bounds, and the 1.5B model often
    answered 10 (54 of 150 plan calls in the cold-start evaluation).
    """
    schema = plan_schema()
    schema["properties"]["per_channel"] = {"type": "integer"}
    return schema


def channels_prompt() -> str:
    """The prompt's list of channels: ``name (description), ...`` from the registry."""
    return ", ".join(f"{c.name} ({c.description})" for c in channels_registry.channels())



def usable_channels(has_history: bool, has_query: bool, has_liked: bool) -> list[str]:
    """Registered channels that have an input for this request, in plan order."""
    return channels_registry.usable_channels(RecallSignals(has_history, has_query, has_liked))


def rules_plan(
    warm: bool, usable: list[str], per_channel: int, keep: int, fine_mode: str, why: str
) -> Plan:
    """The deterministic plan: every usable channel, the configured budgets."""
    path = "warm" if warm else "cold"
    reason = (
        f"{path} user ({why}); channels with an input: {', '.join(usable)}"
        if warm
        else f"cold user ({why}): serve from the conversation and a popularity prior"
    )
    return Plan(
        path=path,
        channels=usable,
        per_channel=per_channel,
        coarse_keep=keep,
        fine_mode=fine_mode,
        reason=reason,
        source="rules",
    )


def generation_wanted(state: State, svc: Services, warm: bool) -> bool:
    """True when a cold request should go through sample generation.

    It needs: the cold path, the switch on (the request's ``sample_generation``, else
    ``settings.sample_generation``), an LLM that is up, and something to reason from
    (a text query or named items).
    """
    switch = state.get("sample_generation")
    if switch is None:
        switch = svc.settings.sample_generation
    intent = state["intent"]
    return (
        not warm
        and bool(switch)
        and svc.llm is not None
        and not state.get("llm_down", False)
        and bool(intent.query or intent.liked_items)
        and not state.get("channels")
    )


def plan(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: write ``plan`` (see the module docstring)."""
    started = time.perf_counter()
    svc = services_of(runtime)
    settings = svc.settings
    user_id = state.get("user_id")
    intent = state["intent"]
    warm = svc.coarse_model.knows(user_id)
    profile = state.get("profile")
    remembered = len(profile.liked) if profile else 0
    why = (
        f"user {user_id} is in the training data"
        if warm
        else ("no user id" if not user_id else f"user {user_id} has no rating history")
    )
    if remembered:
        why += f"; the profile remembers {remembered} liked item(s)"
    generate = generation_wanted(state, svc, warm)
    has_liked = bool(intent.liked_items) or warm or bool(remembered)
    usable = usable_channels(warm, bool(intent.query), has_liked)
    if generate:  # pseudo-interactions feed only channels that read the user state
        fed = set(channels_registry.user_state_channels())
        extra = {c for c in usable_channels(warm, bool(intent.query), True) if c in fed}
        usable = [c for c in channels_registry.channel_names() if c in usable or c in extra]
    wanted = intent.k or state.get("k", 10)  # "30 comedies" wins over the request's k
    keep = max(settings.coarse_keep, wanted)  # as respond cuts: never fewer than it shows
    asked = (state.get("funnel") or {}).get("fine_mode")
    has_llm = svc.llm is not None
    fine_mode = fine_mode_for(state.get("fine_mode"), asked, settings.fine_mode, has_llm)
    result = rules_plan(warm, usable, settings.recall_per_channel, keep, fine_mode, why)
    fallbacks: list[str] = []
    codes = [Code.PATH_WARM if warm else Code.PATH_COLD]
    llm_down = state.get("llm_down", False)
    fell_back = False
    note = ""
    fixed = state.get("channels")
    if fixed:
        known = channels_registry.channel_names()
        unknown = [c for c in fixed if c not in known]
        if unknown:
            raise ValueError(f"unknown recall channel(s) {unknown}; known: {', '.join(known)}")
        result = result.model_copy(
            update={"channels": list(fixed), "source": "request", "reason": "channels fixed"}
        )
        codes.append(Code.CHANNELS_FIXED)
    elif state.get("tool_calls"):  # the controller's one call was this turn's plan
        codes.append(Code.RULES_ONLY)
    elif settings.planner == "llm" and svc.llm is not None and not llm_down:
        facts = "\n".join(
            [
                f"- path: {result.path} ({why})",
                f"- request text: {intent.query!r}" if intent.query else "- no request text",
                f"- items the user named as liked: {len(intent.liked_items)}",
                f"- user has rating history: {'yes' if warm else 'no'}",
                f"- channels that have an input: {', '.join(usable)}",
            ]
        )
        try:
            out = svc.llm.json(
                [{"role": "user", "content": load_prompt("plan").format(
                    channels=channels_prompt(), facts=facts)}],
                plan_schema(),
                purpose="plan",
                max_tokens=40,
                validate_schema=plan_answer_schema(),
            )
            lo, hi = PER_CHANNEL_RANGE
            per_channel = min(max(int(out["per_channel"]), lo), hi)
            if per_channel != out["per_channel"]:
                note += f"per_channel {out['per_channel']} clamped to {per_channel}; "
                codes.append(Code.BUDGET_CLAMPED)
            chosen = [c for c in dict.fromkeys(out["channels"]) if c in usable]
            ignored = [c for c in out["channels"] if c not in usable]
            for backstop in channels_registry.channels():
                if backstop.backstop and backstop.name in usable and backstop.name not in chosen:
                    chosen.append(backstop.name)  # a result is always produced
            result = result.model_copy(
                update={
                    "channels": chosen,
                    "per_channel": per_channel,
                    "reason": f"{result.path} path ({why}); the LLM chose "
                    f"{', '.join(chosen)} with {per_channel} items each",
                    "source": "llm",
                }
            )
            if ignored:
                note += f"ignored channels without input: {', '.join(ignored)}; "
                codes.append(Code.CHANNELS_IGNORED)
        except LLMError as err:
            fell_back = True
            llm_down = err.unreachable
            fallbacks.append(f"plan: LLM failed ({err}); used the rules plan")
            codes += [Code.LLM_FAILED, Code.RULES_ONLY]
            codes += [Code.LLM_UNREACHABLE] if err.unreachable else []
    if generate:
        result = result.model_copy(
            update={
                "sample_generation": True,
                "reason": result.reason + "; sample generation: the LLM proposes catalogue "
                "items as pseudo-interactions that seed collaborative recall",
            }
        )
    note += f"{result.path} path via {result.source}: {', '.join(result.channels)}"
    if generate:
        note += "; then sample generation"
        codes.append(Code.SAMPLE_GENERATION)
    return {
        "plan": result,
        "fallbacks": fallbacks,
        "llm_down": llm_down,
        "stages": record(state, "plan", started, len(result.channels), fell_back, note, codes),
    }
