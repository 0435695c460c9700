"""The rules controller: a message → tool calls, by patterns (no LLM).

It is the fallback when the LLM controller fails and the whole controller in
``--no-llm`` mode. It extends :mod:`recpilot.agent.intent_rules` (hard constraints,
decades, exclusions) to every tool: greetings, capabilities, injection and off-topic
refusals, profile show/forget (with the confirmation answer), explain, compare,
item_info, feedback (like/dislike/seen for shown or named items), refine (newer,
older, more like, none of these, only …) and recommend (the default for anything
that asks for items). English patterns only: other languages fall to ``recommend``
with the message as the query (the LLM controller is the one that reads them).
"""

from __future__ import annotations

import re

from recpilot.agent.intent_rules import parse_constraints, strip_constraints
from recpilot.agent.refs import references_in
from recpilot.data.catalogue import Catalogue, Constraints
from recpilot.data.preferences import read_titles

_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier)?"
    r"\s*(?:instructions|rules|prompts?)\b|system prompt|\byou are now\b|developer mode|jailbreak"
    r"|\bact as (?:(?:a|an|my|the)\s+)?(?:[a-z-]+\s+)?(?:assistant|ai|system|bot|chatbot|model"
    r"|admin(?:istrator)?|developer|root|terminal|shell|dan)\b|\bact as if you\b"
    r"|\bpretend (?:to be|you are)\b|reveal your|print your (?:instructions|prompt)"
)
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening)|hallo|bonjour|salut"
    r"|hola|ciao|servus|moin)\b[\s!.,]*(?:there|again|recpilot)?[\s!.,]*$"
)
_THANKS = re.compile(r"^\s*(?:thanks?|thank you|thx|cheers|great|ok(?:ay)?|cool)\b[\s!.,]*$")
_CAPABILITIES = re.compile(
    r"\bwhat can you do\b|\bhow (?:does this|do you) work\b|^\s*help\s*[?!.]*$|\bwho are you\b"
    r"|\bwhat are you\b|\bwhat do you do\b"
)
_CONFIRM = re.compile(
    r"^\s*(?:yes|yeah|yep|sure|ok(?:ay)?|confirm(?:ed)?|do it|go ahead|please do)\b"
)
_MY_DATA = r"(?:profile|data|history|preferences|likes|dislikes|ratings|memory)"
_FORGET = re.compile(  # instructions to the agent only: not "help me forget my ex"
    r"(?<!help me )(?<!make me )(?<!let me )(?<!to )"  # "help me forget everything": a mood
    r"\bforget (?:everything|all|what you know|all you know)(?: about me)?\b"
    r"|\bforget (?:about )?me\s*[.!]*$|\bforget about me\b"
    rf"|\b(?:forget|delete|erase|wipe|remove|clear) (?:all )?my {_MY_DATA}\b"
)
_SHOW_PROFILE = re.compile(
    r"\bwhat do you (?:know|remember) about me\b|\bmy profile\b|\bwhat have i (?:liked|told you)\b"
    r"|\bshow (?:me )?what you know\b"
)
_EXPLAIN = re.compile(
    r"^\s*(?:(?:and|but|so|ok(?:ay)?|hmm+|then)[\s,]+)?why\b"
    r"|\bwhy (?:did|do) you (?:pick|choose|recommend|suggest)|\bwhy (?:is|was) .{1,60}"
    r"(?:there|recommended|on the list|picked|in the list)|\bexplain\b"
    r"|\bhow did you (?:pick|choose)"
)
_COMPARE = re.compile(
    r"\bcompare\b|\bdifference between\b|\bversus\b|\bvs\.?\s|\bwhich is better\b"
)
_INFO = re.compile(
    r"\bwhat(?:'s| is) (.{2,80}?) about\b|\btell me (?:more )?about (.{2,80}?)[?.!]*$"
    r"|\b(?:info|information|details) (?:on|about) (.{2,80}?)[?.!]*$|\bplot of (.{2,80}?)[?.!]*$"
    r"|\bwhat (?:year|genre) is (.{2,80}?)[?.!]*$"
    r"|\bis (.{2,60}?) (?:any good|worth (?:it|watching))"
)
_SEEN = re.compile(
    r"\b(?:i(?:'ve| have)?\s+(?:already\s+)?(?:seen|watched)|already (?:seen|watched)"
    r"|saw (?:it|that|them|those) already)\b"
)
_DISLIKE = re.compile(
    r"\bi (?:didn't|did not|don't|do not) (?:like|enjoy|care for)\b|\bi (?:hated|disliked)\b"
    r"|\bnot a fan of\b|\b(?:was|is) (?:boring|terrible|awful|bad)\b"
)
_LIKE = re.compile(r"\bi (?:loved|liked|enjoyed|adored|love|like|enjoy)\b")
_NEWER = re.compile(r"\b(?:newer|more recent|recent ones|less old|modern)\b")
_OLDER = re.compile(r"\b(?:older|classics?|earlier ones|less recent|old(?:er)? ones)\b")
_NONE = re.compile(
    r"\bnone of (?:these|them|those)\b|\bnot (?:these|those)\b|\bdifferent ones\b"
    r"|\bsomething else\b|\bother ones\b"
)
_MORE_LIKE = re.compile(r"\b(?:more (?:like|of)|similar to|something like)\b")
_LIKE_MORE = re.compile(r"\bi (?:like|love|enjoy)\s+(?:more|something|similar)\b")  # a wish
_PRONOUN = re.compile(r"\b(?:it|this|that)\b")
_ONLY = re.compile(r"\bonly (?:the ones? )?(?:from|in|with)\b|\bjust the\b|\bonly ([a-z-]+)s\b")
_REQUEST = re.compile(
    r"\b(?:recommend|suggest|suggestions?|show me|give me|find me|looking for|want|would like"
    r"|i'd like|in the mood|something|anything|another|more|movies?|films?|watch|picks?"
    r"|ideas?|list|options?|please)\b"
)
_OFF_TOPIC = re.compile(
    r"\b(?:weather|capital of|recipe|cook|stock|bitcoin|president|news|translate|math|equation"
    r"|code|python|javascript|homework|essay|poem|joke|calculate|square root|sum of|football score"
    r"|flight|hotel|doctor|medicine|password|email)\b|\d+\s*[+*/x-]\s*\d+"
)
_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a few": 3}  # fmt: skip
_COUNT = re.compile(
    r"\b(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|a couple of|a few)\s+"
    r"(?:more\s+|other\s+|new\s+|good\s+|great\s+|[a-z-]+\s+)?"
    r"(?:movies|films|items|picks|suggestions|recommendations|titles|ones|options|[a-z-]+(?:ies|s))\b"
)
_TOP = re.compile(r"\btop\s+(\d{1,2})\b|\b(\d{1,2})\s+more\b")
_BOOST = re.compile(r"\b(?:ideally|preferably|maybe|bonus if|if possible|would be nice)\b")


def requested_k(text: str) -> int | None:
    """Number of items asked for ("3 comedies", "top 5", "a few"), or None."""
    low = text.lower()
    if m := _TOP.search(low):
        return int(m.group(1) or m.group(2))
    if m := _COUNT.search(low):
        word = m.group(1)
        n = int(word) if word.isdigit() else _COUNT_WORDS[word]
        return (
            n
            if 1 <= n <= 50 and not (word.isdigit() and re.search(rf"\b{word}0?s\b", low))
            else None
        )
    return None


def _recommend_args(text: str, cons: Constraints, query_text: str, liked: list[str],
                    avoid: list[str]) -> dict:
    args: dict = {"query": strip_constraints(query_text)}
    soft = bool(_BOOST.search(text.lower()))
    if cons.include_categories:
        args["boost_categories" if soft else "include_categories"] = cons.include_categories
    if cons.exclude_categories:
        args["exclude_categories"] = cons.exclude_categories
    if cons.year_min is not None:
        args["year_min"] = cons.year_min
    if cons.year_max is not None:
        args["year_max"] = cons.year_max
    if liked:
        args["like_titles"] = liked
    if avoid:
        args["avoid_titles"] = avoid
    if k := requested_k(text):
        args["k"] = k
    return args


def rules_calls(
    message: str,
    catalogue: Catalogue,
    shown: list[str],
    pending: str | None = None,
    focus: str | None = None,
) -> list[dict]:
    """The tool calls the rules choose for ``message``.

    Args:
        message: the user's text.
        catalogue: the loaded catalogue (categories, titles).
        shown: ids shown in the thread's previous funnel turn ([] if none).
        pending: the question the thread is waiting on ("forget"), or None.
        focus: the item the thread last talked about (``State.focus``: what "it" is in
            "compare it with the second one"), or None.

    Returns:
        ``[{"name": tool, "args": {...}}, ...]`` (1–3 calls).
    """
    text = message.strip()
    low = text.lower()
    refs = references_in(text, shown, catalogue)
    if pending == "forget" and _CONFIRM.search(low):
        return [{"name": "profile", "args": {"action": "forget", "confirm": True}}]
    if _INJECTION.search(low):
        return [{"name": "reply", "args": {"kind": "refuse"}}]
    if _GREETING.match(low) or _THANKS.match(low):
        return [{"name": "reply", "args": {"kind": "greeting"}}]
    if _CAPABILITIES.search(low):
        return [{"name": "reply", "args": {"kind": "capabilities"}}]
    if _FORGET.search(low):
        return [{"name": "profile", "args": {"action": "forget"}}]
    if _SHOW_PROFILE.search(low):
        return [{"name": "profile", "args": {"action": "show"}}]
    titles = read_titles(catalogue, text)  # the titles blanked out of `titles.rest`
    liked, avoid = list(titles.liked_titles), list(titles.avoided_titles)
    if _EXPLAIN.search(low) and shown:
        return [{"name": "explain", "args": {"item": (refs or liked or ["#1"])[0]}}]
    if _COMPARE.search(titles.rest.lower()):  # not the "vs." of "The People vs. Larry Flynt"
        items = refs + liked
        if len(items) == 1 and _PRONOUN.search(low) and shown:  # "compare it with #2"
            other = focus if focus and focus != items[0] else ("#2" if items[0] == "#1" else "#1")
            items = [other, *items]
        if len(items) >= 2:
            return [{"name": "compare", "args": {"items": items[:4]}}]
    if m := _INFO.search(text.lower()):
        subject = next(g for g in m.groups() if g)
        start = low.find(subject)
        item = refs[0] if refs else (liked[0] if liked else text[start : start + len(subject)])
        return [{"name": "item_info", "args": {"item": item}}]
    calls: list[dict] = []
    wants_more = bool(_REQUEST.search(low))
    for pattern, kind in ((_SEEN, "seen"), (_DISLIKE, "dislike")):
        if pattern.search(low) and (refs or liked or avoid):
            items = refs or liked or avoid
            calls.append({"name": "feedback", "args": {"items": items, "kind": kind}})
            liked = [t for t in liked if t not in items]
            avoid = [t for t in avoid if t not in items] if kind == "seen" else avoid
            break
    if not calls and _LIKE.search(low) and refs and not _LIKE_MORE.search(low):
        calls.append({"name": "feedback", "args": {"items": refs, "kind": "like"}})
    rest = _REQUEST.sub(" ", low)
    if calls and not wants_more:
        return calls
    if shown:
        if _NEWER.search(low):
            return [*calls, {"name": "refine", "args": {"change": "newer"}}]
        if _OLDER.search(low):
            return [*calls, {"name": "refine", "args": {"change": "older"}}]
        if _NONE.search(low):
            return [*calls, {"name": "refine", "args": {"change": "none_of_these"}}]
        if _MORE_LIKE.search(low) and refs:
            return [*calls, {"name": "refine", "args": {"change": "more_like", "item": refs[0]}}]
        if _ONLY.search(low):
            return [*calls, {"name": "refine", "args": {"change": "only", "only": text}}]
    cons = parse_constraints(titles.rest, catalogue)  # "Star Wars" is no War filter
    asks = wants_more or liked or not cons.is_empty() or bool(calls)
    if not asks and (_OFF_TOPIC.search(low) or text.endswith("?")):
        return [{"name": "reply", "args": {"kind": "refuse"}}]
    if not asks and _OFF_TOPIC.search(rest):
        return [{"name": "reply", "args": {"kind": "refuse"}}]
    args = _recommend_args(text, cons, titles.rest, liked, avoid)
    return [*calls, {"name": "recommend", "args": args}]
