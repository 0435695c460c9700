"""Understand: the user's message → structured intent (LLM, schema-checked) + rule constraints.

It also reads the user's long-term profile from the graph's store (when there is one
and a user id): the profile's hard constraints ("no horror" said in an earlier chat)
join the thread's, and a lifted exclusion ("horror is fine again") leaves both.
Facts about the user (who they watch with, age band) are read by rules.

The LLM answers under a JSON schema whose category fields are an ``enum`` of the
catalogue's categories, so it cannot invent one; named titles are resolved against
the catalogue by fuzzy title match. Hard constraints found by the rules
(``intent_rules``) override the LLM's. Any LLM failure leaves the rules' reading and
is recorded as a fallback.
"""

from __future__ import annotations

import time

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from recpilot.agent.intent_rules import (
    is_follow_up,
    parse_constraints,
    parse_facts,
    parse_lifted,
    strip_constraints,
)
from recpilot.agent.nodes.common import record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Code, Intent, PreviousTurn, State, previous_turn
from recpilot.data.catalogue import Catalogue, Constraints
from recpilot.data.preferences import TitleReading, apply_mode, read_titles
from recpilot.llm.client import LLMError
from recpilot.prompts import load_prompt
from recpilot.stores.profiles import UserProfile, load_profile


def intent_schema(categories: list[str]) -> dict:
    """JSON schema of the LLM's answer; category lists are enums of ``categories``."""
    cats = {"type": "array", "items": {"type": "string", "enum": categories}, "maxItems": 5}
    return {
        "type": "object",
        "properties": {
            "query": {"type": "string", "maxLength": 200},
            "include_categories": cats,
            "exclude_categories": cats,
            "year_min": {"type": "integer", "minimum": 0, "maximum": 2100},
            "year_max": {"type": "integer", "minimum": 0, "maximum": 2100},
            "liked_titles": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        },
        "required": [
            "query", "include_categories", "exclude_categories", "year_min", "year_max",
            "liked_titles",
        ],
    }  # fmt: skip


def resolve_titles(titles: list[str], catalogue: Catalogue, min_score: float = 85) -> list[str]:
    """Catalogue ids for titles, best fuzzy match each; unmatched titles are skipped."""
    ids: list[str] = []
    for title in titles:
        hits = catalogue.search_title(title, limit=1, min_score=min_score)
        if hits and hits[0][0].item_id not in ids:
            ids.append(hits[0][0].item_id)
    return ids


def combine(rules: Constraints, llm: dict) -> Constraints:
    """LLM constraints with the rules' on top; nothing both included and excluded."""
    exclude = list(dict.fromkeys(rules.exclude_categories + llm["exclude_categories"]))
    soft = set(rules.prefer_categories) | set(rules.disfavor_categories)
    include = [
        c
        for c in dict.fromkeys(rules.include_categories + llm["include_categories"])
        if c not in exclude and (c in rules.include_categories or c not in soft)
    ]
    year_min, year_max = rules.year_min, rules.year_max
    if year_min is None and year_max is None:
        year_min = llm["year_min"] or None
        year_max = llm["year_max"] or None
        if year_min and year_max and year_min > year_max:
            year_min = year_max = None
    return Constraints(
        include_categories=include,
        exclude_categories=exclude,
        year_min=year_min,
        year_max=year_max,
        exclude_items=rules.exclude_items,
        prefer_categories=rules.prefer_categories,
        disfavor_categories=[c for c in rules.disfavor_categories if c not in exclude],
    )


def follow_up(intent: Intent, previous_turn: PreviousTurn | None) -> Intent:
    """Resolve "more like that": the previous turn's query, seeded by its top 3 items."""
    previous = previous_turn.intent if previous_turn else None
    shown = list(previous_turn.item_ids[:3]) if previous_turn else []
    seeds = list(dict.fromkeys([*(previous.liked_items if previous else []), *shown]))
    return intent.model_copy(
        update={
            "query": previous.query if previous else "",
            "liked_items": list(dict.fromkeys([*intent.liked_items, *seeds])),
            "note": f"follow-up: previous query and its top items {shown} as seeds",
        }
    )


def _context(state: State) -> str:
    earlier = [m.content for m in state.get("messages", []) if isinstance(m, HumanMessage)]
    if not earlier:
        return ""
    return "Earlier in this chat the user said: " + " | ".join(str(t) for t in earlier[-3:])


def _profile(state: State, runtime: Runtime[Services] | None) -> UserProfile | None:
    """The user's stored profile, or None without a store or a user id."""
    user_id = state.get("user_id")
    store = runtime.store if runtime is not None else None
    if store is None or not user_id:
        return None
    return load_profile(store, user_id)


def understand(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: read ``message``, write ``intent`` and the thread's constraints."""
    started = time.perf_counter()
    svc = services_of(runtime)
    message = (state.get("message") or "").strip()
    titles = TitleReading(rest=message)
    if message and svc.settings.named_titles:
        titles = read_titles(svc.catalogue, message, svc.item_vectors)
    rules = parse_constraints(titles.rest, svc.catalogue) if message else Constraints()
    rules = apply_mode(rules, svc.settings.genre_preference)
    rules.exclude_items = list(titles.avoided)
    query = strip_constraints(message)
    intent = Intent(
        query=query,
        constraints=rules,
        liked_items=list(titles.liked),
        source="rules" if message else "none",
    )
    fallbacks: list[str] = []
    codes: list[Code] = []
    llm_down = state.get("llm_down", False)
    fell_back = False
    funnel = state.get("funnel")
    if funnel is not None:  # the controller's recommend/refine call: no LLM call here
        intent = from_funnel(funnel, rules, query)
    elif message and (svc.llm is None or llm_down):
        codes.append(Code.RULES_ONLY)
    elif message and svc.llm is not None and not llm_down:
        categories = svc.catalogue.category_vocabulary()
        prompt = load_prompt("understand").format(
            categories=", ".join(categories), context=_context(state)
        )
        try:
            out = svc.llm.json(
                [{"role": "system", "content": prompt}, {"role": "user", "content": message}],
                intent_schema(categories),
                purpose="understand",
                max_tokens=160,
            )
            intent = Intent(
                query=strip_constraints(out["query"]) or query,
                constraints=combine(rules, out),
                liked_items=list(dict.fromkeys([
                    *titles.liked,
                    *(i for i in resolve_titles(out["liked_titles"], svc.catalogue)
                      if i not in titles.avoided),
                ])),  # fmt: skip
                source="llm",
            )
        except LLMError as err:
            fell_back = True
            llm_down = err.unreachable
            codes += [Code.LLM_FAILED, Code.RULES_ONLY]
            codes += [Code.LLM_UNREACHABLE] if err.unreachable else []
            fallbacks.append(f"understand: LLM failed ({err}); used rules only")
    refining = funnel is not None and bool(funnel.get("refine"))
    if message and not refining and is_follow_up(intent.query or message):
        intent = follow_up(intent, previous_turn(state))
        codes.append(Code.FOLLOW_UP)
    if intent.constraints.include_categories or intent.constraints.exclude_categories:
        mask = svc.catalogue.allowed_mask(intent.constraints)
        if not mask.any() and intent.source == "llm":
            intent.constraints = rules
            intent.note = "LLM constraints matched no item; kept the rules' constraints"
            codes.append(Code.LLM_CONSTRAINTS_REJECTED)
    lifted = parse_lifted(message, svc.catalogue) if message else []
    if lifted:
        intent.lifted_categories = lifted
        intent.constraints.include_categories = [
            c for c in intent.constraints.include_categories if c not in lifted
        ]
        intent.constraints.exclude_categories = [
            c for c in intent.constraints.exclude_categories if c not in lifted
        ]
    intent.facts = parse_facts(message) if message else {}
    profile = _profile(state, runtime)
    previous = state.get("thread_constraints") or Constraints()
    if profile is not None:
        previous = previous.merged(Constraints(exclude_categories=profile.avoid_categories))
    previous = previous.model_copy(
        update={"exclude_categories": [c for c in previous.exclude_categories if c not in lifted]}
    )
    if funnel is not None:  # positives of a new request replace the thread's; negatives stay
        stated = intent.constraints
        fresh: dict = {"exclude_items": [*previous.exclude_items, *funnel.get("exclude_items", [])]}
        years_stated = stated.year_min is not None or stated.year_max is not None
        if funnel.get("replace_years") or years_stated:
            fresh |= {"year_min": None, "year_max": None}
        if funnel.get("replace_includes") or stated.include_categories:
            fresh["include_categories"] = []
        if funnel.get("replace_includes") or stated.prefer_categories:
            fresh["prefer_categories"] = []
        previous = previous.model_copy(update=fresh)
    # the newer statement wins: "I love musicals" then "not a fan of musicals"
    stated = intent.constraints
    previous = previous.model_copy(update={
        "prefer_categories": [c for c in previous.prefer_categories
                              if c not in stated.disfavor_categories + stated.exclude_categories],
        "disfavor_categories": [c for c in previous.disfavor_categories
                                if c not in stated.prefer_categories + stated.include_categories],
    })  # fmt: skip
    requested = state.get("request_constraints") or Constraints()
    constraints = previous.merged(requested).merged(intent.constraints)
    constraints.include_categories = [
        c for c in constraints.include_categories if c not in constraints.exclude_categories
    ]
    note = f"source={intent.source}; constraints={constraints.model_dump(exclude_defaults=True)}"
    if titles.liked:
        note += f"; titles named: {', '.join(titles.liked)}"
    if titles.avoided_titles:
        note += f"; avoided: {', '.join(titles.avoided_titles)} ({len(titles.avoided)} items)"
    if lifted:
        note += f"; lifted: {', '.join(lifted)}"
        codes.append(Code.EXCLUSION_LIFTED)
    if profile is not None and not profile.is_empty():
        codes.append(Code.PROFILE_APPLIED)
        note += (
            f"; profile: {len(profile.liked)} liked, {len(profile.disliked)} disliked, "
            f"avoids {profile.avoid_categories or 'nothing'}"
        )
    update: dict = {
        "profile": profile,
        "intent": intent,
        "thread_constraints": constraints,
        "fallbacks": fallbacks,
        "llm_down": llm_down,
        "stages": record(state, "understand", started, 0, fell_back, note, codes),
    }
    if message and not state.get("tool_calls"):  # the controller added it already
        update["messages"] = [HumanMessage(message)]
    return update


def from_funnel(funnel: dict, rules: Constraints, query: str) -> Intent:
    """The intent of a controller's funnel request (``tools.base.FunnelRequest`` as a dict).

    Hard constraints the rules read in the message are kept on top of the request's
    (as on the LLM-understand path: a small model sometimes drops or flips them), except
    where one side states a category as a soft preference: the request's soft boosts and
    penalties become the constraints' ``prefer`` / ``disfavor`` categories (one mechanism,
    :mod:`recpilot.data.preferences`), and neither side turns the other's soft into hard.
    """
    boost = list(funnel.get("boost_categories", []))
    penalize = list(funnel.get("penalize_categories", []))
    rules_soft = set(rules.prefer_categories) | set(rules.disfavor_categories)
    asked = Constraints(
        include_categories=[c for c in funnel.get("include_categories", [])
                            if c in rules.include_categories or c not in rules_soft],
        exclude_categories=funnel.get("exclude_categories", []),
        year_min=funnel.get("year_min"),
        year_max=funnel.get("year_max"),
        prefer_categories=boost,
        disfavor_categories=penalize,
    )
    # what the request states as soft stays soft even where the rules read it as hard
    # ("ideally a comedy": the rules' include of Comedy is dropped)
    rules = rules.model_copy(update={"include_categories": [
        c for c in rules.include_categories if c not in set(boost) | set(penalize)]})
    cons = asked.merged(rules) if not funnel.get("replace_years") else asked.merged(
        rules.model_copy(update={"year_min": None, "year_max": None}))  # fmt: skip
    if cons.year_min is not None and cons.year_max is not None and cons.year_min > cons.year_max:
        cons.year_min, cons.year_max = asked.year_min, asked.year_max
    cons.include_categories = [c for c in cons.include_categories
                               if c not in cons.exclude_categories]  # fmt: skip
    refine = bool(funnel.get("refine"))
    text = funnel.get("query") or ""
    return Intent(
        query=text if refine else (strip_constraints(text) or query),
        constraints=cons,
        liked_items=list(funnel.get("seed_items", [])),
        k=funnel.get("k"),
        source="agent",
        note=funnel.get("note", ""),
    )
