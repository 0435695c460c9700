"""Scoring one controller turn against its labels: tool choice, arguments, end checks.

Labels (``conversations.v1.jsonl``, one conversation a line) give per turn the tools
expected (``tools``, compared as a set), expected argument values (``args``, keyed
``tool.argument``) and end checks on the items shown (``check``):

- ``k``: exactly this many items; ``include_any`` / ``exclude``: every item has one
  of / none of these categories; ``year_min`` / ``year_max``: every item's year inside;
- ``absent``: these titles are never shown again in the thread (from this turn on);
  ``avoid_franchise``: no title of the franchise, from this turn on;
  ``absent_refs``: the items the previous turn showed at these positions;
  ``absent_refs_from``: ``[turn, [refs]]`` — positions of an earlier turn's list.

Every turn also checks that each shown id is in the catalogue (no invented id) and
that no item named earlier in the thread as liked, seen, disliked or avoided comes back.
"""

from __future__ import annotations

from typing import Any

from recpilot.agent.refs import resolve_items
from recpilot.agent.tools import get_tool
from recpilot.data.catalogue import Catalogue
from recpilot.data.mentions import title_index


def _ids(refs: list[str], shown: list[str], catalogue: Catalogue) -> set[str]:
    return set(resolve_items([str(r) for r in refs], shown, catalogue)[0])


def arg_matches(
    key: str, expected: Any, chosen: dict[str, dict], shown: list[str], catalogue: Catalogue
) -> bool:
    """True when the chosen call's argument agrees with the label.

    Category lists and item lists: the expected ones are a subset of the chosen ones
    (categories in catalogue spelling, items resolved to ids against ``shown``); other
    values: equal. A missing tool or argument fails.
    """
    tool, arg = key.split(".", 1)
    if tool not in chosen:
        return False
    if arg not in chosen[tool]:  # calls keep only non-default arguments: use the default
        spec = get_tool(tool)
        field = spec.args_schema.model_fields.get(arg) if spec else None
        if field is None or field.is_required():
            return False
        got = field.get_default(call_default_factory=True)
    else:
        got = chosen[tool][arg]
    if got is None:
        return expected is None
    if arg.endswith("_categories"):
        norm = {catalogue.normalize_category(str(c)) for c in got}
        return {catalogue.normalize_category(c) for c in expected} <= norm
    if arg in ("like_titles", "avoid_titles", "items", "item"):
        exp = expected if isinstance(expected, list) else [expected]
        have = got if isinstance(got, list) else [got]
        if arg == "avoid_titles":  # a franchise name counts as its titles
            index = title_index(catalogue)
            fr = {i for n in have for i in index.franchise(str(n))}
            want = {i for n in exp for i in (index.franchise(n) or _ids([n], shown, catalogue))}
            return bool(want) and want <= (fr | _ids(have, shown, catalogue))
        want = _ids(exp, shown, catalogue)
        return bool(want) and want <= _ids(have, shown, catalogue)
    return got == expected


def end_checks(
    check: dict[str, Any],
    items: list[dict],
    catalogue: Catalogue,
    named_ids: set[str],
    shown_by_turn: list[list[str]],
) -> dict[str, bool]:
    """The end checks of one turn (see the module docstring); name → passed."""
    out: dict[str, bool] = {}
    ids = [i["item_id"] for i in items]
    out["no_invented_ids"] = all(catalogue.has(i) for i in ids)
    out["named_absent"] = not (set(ids) & named_ids)
    if "k" in check:
        out["k"] = len(ids) == check["k"]
    cats = [set(catalogue.get(i).categories) for i in ids if catalogue.has(i)]
    years = [catalogue.get(i).year for i in ids if catalogue.has(i)]
    if check.get("include_any"):
        out["include"] = bool(ids) and all(c & set(check["include_any"]) for c in cats)
    if check.get("exclude"):
        out["exclude"] = all(not (c & set(check["exclude"])) for c in cats)
    if "year_min" in check:
        out["year_min"] = bool(ids) and all(y is not None and y >= check["year_min"] for y in years)
    if "year_max" in check:
        out["year_max"] = bool(ids) and all(y is not None and y <= check["year_max"] for y in years)
    return out


def named_in_labels(
    check: dict[str, Any], catalogue: Catalogue, shown_by_turn: list[list[str]]
) -> set[str]:
    """Ids a turn's labels name as never to show again in the thread (from now on)."""
    ids: set[str] = set()
    index = title_index(catalogue)
    for title in check.get("absent", []):
        hits = catalogue.search_title(title, limit=1, min_score=90)
        if hits:
            ids.add(hits[0][0].item_id)
    for name in check.get("avoid_franchise", []):
        ids |= set(index.franchise(name))
    prev = shown_by_turn[-1] if shown_by_turn else []
    ids |= _ids(check.get("absent_refs", []), prev, catalogue) if prev else set()
    if "absent_refs_from" in check:
        turn, refs = check["absent_refs_from"]
        if turn < len(shown_by_turn) and shown_by_turn[turn]:
            ids |= _ids(refs, shown_by_turn[turn], catalogue)
    return ids
