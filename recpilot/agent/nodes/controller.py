"""Controller: the user's message → the turn's tool calls, in one LLM call (a short plan).

InteRecAgent's "plan-first" execution (Huang et al. 2023, "Recommender AI Agent"): the
LLM writes the whole plan for the turn at once — which tools, with which arguments —
and the tools then run without further LLM calls (fine ranking aside). The plan is
untrusted: every call is validated against its tool's pydantic schema (invalid fields
dropped and recorded as repairs, unknown tools dropped) and, when the tools run,
against the catalogue (unknown titles and ids dropped and recorded).

Two request forms (``settings.controller_call``): ``json_schema`` — a JSON object
``{"calls": [{"tool", "args"}]}`` under a schema whose category fields are enums of the
catalogue's categories; ``tool_calls`` — the backend's native tool calling. The prompt
puts the static part first (tool list, rules, category list: one system message) and
the turn's part last (shown items, the message), so llama.cpp reuses the cached prefix.

The rules controller (:mod:`recpilot.agent.controller_rules`) answers when the LLM is
off, down, set aside (``settings.controller == "rules"``) or its plan is unusable.
"""

from __future__ import annotations

import time
import typing
from functools import cache
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime
from pydantic import ValidationError

from recpilot.agent.controller_rules import rules_calls
from recpilot.agent.nodes.common import item_noun, record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Code, State, previous_turn
from recpilot.agent.tools import MAX_CALLS, agent_tools, calls_schema, get_tool, langchain_tools
from recpilot.llm.client import LLMError
from recpilot.prompts import load_prompt

MAX_TOKENS = 120  # a plan of 1–3 short calls
SHOWN_IN_PROMPT = 10


def _type_name(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(a) for a in args)
    if typing.get_origin(annotation) is list:
        return f"list[{_type_name(args[0])}]"
    if args:
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    return getattr(annotation, "__name__", str(annotation))


def tool_lines() -> str:
    """One prompt line per registered tool: ``- name(arg: type, ...): description``."""
    lines = []
    for tool in agent_tools():
        fields = ", ".join(
            f"{n}: {_type_name(f.annotation)}" for n, f in tool.args_schema.model_fields.items()
        )
        lines.append(f"- {tool.name}({fields}): {tool.description}")
    return "\n".join(lines)


@cache
def system_prompt(noun: str, categories: tuple[str, ...]) -> str:
    """The static prefix of every controller call (same text for every turn)."""
    return load_prompt("controller").format(
        noun=noun, tools=tool_lines(), categories=", ".join(categories)
    )


def turn_prompt(message: str, shown_labels: list[str], pending: str | None) -> str:
    """The turn's part: the items shown last (numbered), a pending question, the message."""
    parts = []
    if shown_labels:
        parts.append("Shown: " + "; ".join(f"#{i} {t}" for i, t in enumerate(shown_labels, 1)))
    if pending == "forget":
        parts.append("(You asked the user to confirm forgetting their profile.)")
    parts.append(f"Message: {message}")
    return "\n".join(parts)


def validate_calls(raw: list[dict]) -> tuple[list[dict], list[str]]:
    """Check a plan against the tool registry and each tool's schema.

    Args:
        raw: ``[{"name": str, "args": dict}, ...]`` as the controller proposed.

    Returns:
        (valid calls ``{"name", "args"}`` with validated arguments — at most
        ``MAX_CALLS``, no exact duplicates; the repairs made, for the trace).
    """
    calls: list[dict] = []
    repairs: list[str] = []
    for call in raw[: MAX_CALLS + 2]:
        name = str(call.get("name") or call.get("tool") or "")
        tool = get_tool(name)
        if tool is None:
            repairs.append(f"unknown tool {name!r} dropped")
            continue
        try:
            args, fixed = tool.validate(call.get("args") or {})
        except ValidationError as err:
            repairs.append(f"{name}: dropped ({err.errors()[0]['msg']})")
            continue
        repairs += [f"{name}.{f}" for f in fixed]
        entry = {"name": name, "args": args.model_dump(exclude_defaults=True)}
        if entry not in calls:
            calls.append(entry)
    funnel = [c for c in calls if get_tool(c["name"]).funnel]  # type: ignore[union-attr]
    if len(funnel) > 1:  # one funnel run a turn: the last one wins
        repairs.append(f"{len(funnel) - 1} extra funnel call(s) dropped")
        calls = [c for c in calls if c not in funnel[:-1]]
    return calls[:MAX_CALLS], repairs


def llm_calls(svc: Services, message: str, shown: list[str], pending: str | None) -> list[dict]:
    """One controller LLM call; returns the raw proposed calls.

    Raises:
        LLMError: the call failed or the answer is not a plan.
    """
    assert svc.llm is not None
    cat = svc.catalogue
    labels = [cat.get(i).title for i in shown[:SHOWN_IN_PROMPT]]
    noun = item_noun(svc)
    system = system_prompt(noun, tuple(cat.category_vocabulary()))
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": turn_prompt(message, labels, pending)}]  # fmt: skip
    if svc.settings.controller_call == "tool_calls":
        calls, text = svc.llm.tool_calls(messages, langchain_tools(), "controller", MAX_TOKENS)
        if not calls:
            raise LLMError(f"the model answered text instead of a tool call: {text[:80]!r}")
        return calls
    out = svc.llm.json(messages, calls_schema(cat.category_vocabulary()), "controller",
                       MAX_TOKENS)  # fmt: skip
    return [{"name": c.get("tool"), "args": c.get("args")} for c in out["calls"]]


def controller(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: write ``tool_calls`` and the ``controller`` record (see the module doc)."""
    started = time.perf_counter()
    svc = services_of(runtime)
    if svc.settings.controller == "pipeline":
        return {}
    message = (state.get("message") or "").strip()
    prev = previous_turn(state)
    shown = list(prev.item_ids) if prev else []
    pending = state.get("pending")
    codes: list[Code] = []
    fallbacks: list[str] = []
    info: dict[str, Any] = {"source": "rules", "repairs": [], "proposed": None}
    llm_down = state.get("llm_down", False)
    calls: list[dict] = []
    fell_back = False
    use_llm = svc.settings.controller == "llm" and svc.llm is not None and not llm_down
    if use_llm:
        try:
            proposed = llm_calls(svc, message, shown, pending)
            info["proposed"] = proposed
            calls, info["repairs"] = validate_calls(proposed)
            if not calls:
                raise LLMError("no valid tool call in the plan")
            info["source"] = "llm"
            codes.append(Code.CONTROLLER_LLM)
        except LLMError as err:
            fell_back = True
            llm_down = err.unreachable
            codes += [Code.LLM_FAILED] + ([Code.LLM_UNREACHABLE] if err.unreachable else [])
            fallbacks.append(f"controller: LLM failed ({err}); the rules chose the tools")
            info["fallback"] = str(err)
    if not calls:
        calls, repairs = validate_calls(
            rules_calls(message, svc.catalogue, shown, pending, state.get("focus"))
        )
        info["repairs"] += repairs
        codes.append(Code.CONTROLLER_RULES)
    if info["repairs"]:
        codes.append(Code.ARGS_REPAIRED)
    for c in calls:
        c["source"] = info["source"]
    info["tools"] = [c["name"] for c in calls]
    note = f"{info['source']}: " + "; ".join(f"{c['name']}({c['args']})" for c in calls)
    if info["repairs"]:
        note += f"; repairs: {', '.join(info['repairs'])}"
    return {
        "tool_calls": calls,
        "controller": info,
        "fallbacks": fallbacks,
        "llm_down": llm_down,
        "messages": [HumanMessage(message)],
        "stages": record(state, "controller", started, len(calls), fell_back, note, codes),
    }
