"""Generate: LLM "sample generation" for cold users (Lin et al. 2023, feature engineering).

A user the collaborative model has never seen has no interactions to seed it. Here
the LLM, from what the user said (and what their profile remembers), proposes a few
well-known titles the user would probably like; each is resolved against the
catalogue by fuzzy title, must pass the thread's hard constraints and must not be an
item the user named. The surviving ids become *pseudo-interactions*:
``agent.context.turn_context`` folds them into the recall model's user state, so the collaborative
channel can recall for a stranger. They are seeds, not "seen" items: they may still be
recommended. Unmatched or filtered titles are listed in the stage note; an LLM failure
leaves the plan as it was and is recorded as a fallback.

Switch: ``settings.sample_generation`` / ``RECPILOT_SAMPLE_GENERATION``, per request
``turn_input(sample_generation=...)``, ``--sample-generation/--no-sample-generation``.
"""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from recpilot.agent.nodes.common import record, services_of
from recpilot.agent.services import Services
from recpilot.agent.state import Code, State
from recpilot.data.catalogue import Catalogue, Constraints
from recpilot.funnel.recall import user_state_channels
from recpilot.llm.client import LLMError
from recpilot.prompts import load_prompt

TITLE_MATCH = 85.0  # fuzzy title score (0–100) a proposed title needs to count


def generation_schema(n: int) -> dict:
    """JSON schema of the answer: up to ``n`` titles."""
    return {
        "type": "object",
        "properties": {
            "titles": {
                "type": "array",
                "items": {"type": "string", "maxLength": 80},
                "minItems": 1,
                "maxItems": n,
            }
        },
        "required": ["titles"],
    }


def what_user_said(state: State, catalogue: Catalogue) -> tuple[str, str]:
    """The prompt's two facts: the user's words, and named/remembered items + constraints."""
    intent = state["intent"]
    said = (state.get("message") or intent.query or "").strip() or "(nothing)"
    known = []
    named = [catalogue.get(i).title for i in intent.liked_items if catalogue.has(i)]
    profile = state.get("profile")
    if profile:
        named += [catalogue.get(i).title for i in profile.liked[-5:] if catalogue.has(i)]
    if named:
        known.append("Movies the user liked: " + "; ".join(dict.fromkeys(named)) + ".")
    if profile and profile.summary:
        known.append(f"What we know about the user: {profile.summary}")
    if profile and profile.attributes.get("audience"):
        known.append(f"They watch with: {profile.attributes['audience']}.")
    cons = state.get("thread_constraints") or Constraints()
    if cons.include_categories:
        known.append("Wanted genres: " + ", ".join(cons.include_categories) + ".")
    if cons.exclude_categories:
        known.append("Never suggest: " + ", ".join(cons.exclude_categories) + ".")
    return said, "\n".join(known)


def resolve_proposals(
    titles: list[str], catalogue: Catalogue, constraints: Constraints, exclude: set[str]
) -> tuple[list[str], list[str]]:
    """Proposed titles → catalogue ids that pass ``constraints`` and are not in ``exclude``.

    Returns:
        ``(kept ids in proposal order, rejected titles each with the reason)``.
    """
    allowed = catalogue.allowed_mask(constraints)
    kept: list[str] = []
    rejected: list[str] = []
    for title in titles:
        hits = catalogue.search_title(title, limit=1, min_score=TITLE_MATCH)
        if not hits:
            rejected.append(f"{title!r}: not in the catalogue")
            continue
        item_id = hits[0][0].item_id
        if item_id in exclude or item_id in kept:
            rejected.append(f"{title!r}: named by the user")
        elif not allowed[catalogue.index_of[item_id]]:
            rejected.append(f"{title!r}: breaks the constraints")
        else:
            kept.append(item_id)
    return kept, rejected


def generate(state: State, runtime: Runtime[Services]) -> dict:
    """Graph node: write ``pseudo_items`` and make sure the channels reading the user state run."""
    started = time.perf_counter()
    svc = services_of(runtime)
    cat = svc.catalogue
    plan = state["plan"]
    years = cat.items["year"].dropna()
    said, known = what_user_said(state, cat)
    n = svc.settings.sample_items
    prompt = load_prompt("generate").format(
        year_min=int(years.min()) if len(years) else "any year",
        year_max=int(years.max()) if len(years) else "now",
        said=said,
        known=known,
        n=n,
    )
    assert svc.llm is not None  # the plan only routes here with an LLM
    try:
        out = svc.llm.json(
            [{"role": "user", "content": prompt}],
            generation_schema(n),
            purpose="generate",
            max_tokens=24 * n,
        )
    except LLMError as err:
        codes = [Code.LLM_FAILED] + ([Code.LLM_UNREACHABLE] if err.unreachable else [])
        return {
            "fallbacks": [f"generate: LLM failed ({err}); no pseudo-interactions"],
            "llm_down": err.unreachable,
            "stages": record(state, "generate", started, 0, True, "LLM failed", codes),
        }
    exclude = set(state["intent"].liked_items)
    cons = state.get("thread_constraints") or Constraints()
    kept, rejected = resolve_proposals(out["titles"], cat, cons, exclude)
    update: dict = {"pseudo_items": kept}
    note = f"kept {len(kept)}/{len(out['titles'])}: " + ", ".join(cat.get(i).title for i in kept)
    if rejected:
        note += "; rejected " + "; ".join(rejected)
    missing = [c for c in user_state_channels() if c not in plan.channels]
    if kept and missing:
        update["plan"] = plan.model_copy(update={"channels": [*plan.channels, *missing]})
        note += "; added the " + ", ".join(missing) + " channel" + "s" * (len(missing) > 1)
    update["stages"] = record(
        state, "generate", started, len(kept), False, note, [Code.SAMPLE_GENERATION]
    )
    return update
