"""Deterministic understanding of a message: hard constraints by rules.

This is the non-LLM path of the understand step. It always runs, and hard constraints
it finds win over the LLM's reading (a 1.5B model sometimes drops or flips them);
the LLM adds what rules cannot see (the free-text query, named titles, vaguer genre
wishes). Handles, case-insensitively:

- exclusions: "no horror", "not horror", "without horror", "nothing scary",
  "except horror", "avoid horror", "no horror or thrillers";
- decades: "from the 1990s", "90s", "'90s", "nineties";
- year bounds: "before 1980", "after 2000", "between 1990 and 1995", "since 1995";
- wanted categories, hard: "only dramas", "just comedies", "nothing but westerns", and
  any category named plainly ("a comedy for my kids");
- preferred categories, soft (a boost, not a filter; RecBot): named in a clause with a
  liking word — "I mostly enjoy Drama and Thriller", "I love comedies", "I'm into sci-fi";
- disfavoured categories, soft: "not a big fan of musicals", "less horror", "not really
  into westerns".
"""

from __future__ import annotations

import re

from recpilot.data.catalogue import Catalogue, Constraints

_NEGATION = r"(?:no|not|without|except|avoid|nothing|none of|skip|exclude|excluding|hate)"
_WORD = r"[a-z][a-z'\-]*(?: fi| fiction| noir)?"
_NEG_RE = re.compile(
    rf"\b{_NEGATION}\s+(?:more\s+|any\s+|the\s+)?"
    rf"({_WORD}(?:\s*(?:,|or|and|nor|/)\s*(?:{_NEGATION}\s+)?{_WORD})*)"
)
_DECADE_WORDS = {
    "twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
    "seventies": 1970, "eighties": 1980, "nineties": 1990,
}  # fmt: skip
_DECADE_RE = re.compile(r"(?<![\d])(?:(1[89]|20)?(\d)0)'?s\b|'(\d)0s\b")
_BETWEEN_RE = re.compile(r"\bbetween\s+(\d{4})\s+and\s+(\d{4})\b")
_BEFORE_RE = re.compile(r"\b(?:before|older than|pre-?)\s*(\d{4})\b")
_AFTER_RE = re.compile(r"\b(?:after|newer than|post-?)\s*(\d{4})\b")
_SINCE_RE = re.compile(r"\bsince\s+(\d{4})\b")


_NEGATION_RE = re.compile(r"\b(?:no|nothing|not|none|never|without|avoid)\b[\w\s'-]{0,24}$")


def _negated(text: str, start: int) -> bool:
    """True when a negation ("no", "nothing", "not", …) closely precedes ``start``."""
    return bool(_NEGATION_RE.search(text[max(0, start - 40) : start]))


def _decade(text: str) -> tuple[int, int] | None:
    for word, start in _DECADE_WORDS.items():
        if re.search(rf"\b{word}\b", text):
            return start, start + 9
    m = _DECADE_RE.search(text)
    if not m:
        return None
    if m.group(3):
        start = 1900 + int(m.group(3)) * 10
    else:
        century = m.group(1)
        digit = int(m.group(2))
        if century:
            start = int(century) * 100 + digit * 10
        else:
            start = (2000 if digit <= 2 else 1900) + digit * 10
    return start, start + 9


def _categories_in(text: str, catalogue: Catalogue) -> list[str]:
    """Catalogue categories named in ``text`` (each word and word pair is tried)."""
    words = re.findall(r"[a-z][a-z'\-]*", text)
    found: list[str] = []
    grams = [" ".join(words[i : i + 2]) for i in range(len(words) - 1)] + words
    for gram in grams:
        cat = catalogue.normalize_category(gram) if len(gram) >= 3 else None
        if cat and cat not in found:
            found.append(cat)
    return found


_DECADE_ALT = r"(?:(?:19|20)?\d0'?s|'\d0s|" + "|".join(_DECADE_WORDS) + ")"
_YEAR_PHRASES = [
    re.compile(rf"\b(?:from|in|of)?\s*the\s+{_DECADE_ALT}\b"),
    re.compile(rf"\b{_DECADE_ALT}\b"),
    _BETWEEN_RE, _BEFORE_RE, _AFTER_RE, _SINCE_RE,
]  # fmt: skip


def _up_to_comma(m: re.Match[str]) -> str:
    """Replacement of a negation match: drop it up to the first comma of its word list
    ("no horror, something fun" keeps ", something fun")."""
    _, comma, tail = m.group(1).partition(",")
    return " " + (comma + tail if comma else "")


def strip_constraints(message: str) -> str:
    """``message`` without the phrases that state hard constraints, for semantic search.

    "something lighter, from the 90s, no horror" → "something lighter"; soft negatives
    go too ("not a big fan of musicals, something fun" → "something fun"), so semantic
    recall never searches for what the user does not want. The result is lower-cased;
    punctuation left dangling is tidied.
    """
    text = message.lower()
    for pattern in (_SOFT_NEG_RE, _NEG_RE):
        before = None
        while before != text:  # a kept tail may hold the next negation ("…, no comedy")
            before, text = text, pattern.sub(_up_to_comma, text)
    for pattern in _YEAR_PHRASES:
        text = pattern.sub(" ", text)
    text = re.sub(r"\b(?:only|please|just)\b", " ", text)
    text = re.sub(r"\s*([,;.])(?:\s*[,;.])*", r"\1", text)
    return re.sub(r"\s+", " ", text).strip(" ,;.-")


_FOLLOW_UP_RE = re.compile(
    r"^(?:(?:some|any|give me|show me|i want|i'd like)\s+)?"
    r"(?:more|another|others?|similar|the same)"
    r"(?:,?\s+(?:ones?|films?|movies?|items?|please|of (?:that|those|these|them)|"
    r"like (?:that|this|those|these|them|it)))*\s*[.!]?$"
)


def is_follow_up(query: str) -> bool:
    """True for "more like that", "another one", "similar ones please" — a request that
    refers to the previous turn rather than describing what is wanted."""
    return bool(_FOLLOW_UP_RE.match(query.strip().lower()))


_SOFT_NEG_RE = re.compile(
    r"\b(?:not\s+(?:a\s+)?(?:big\s+|huge\s+|great\s+)?fan\s+of|not\s+(?:really|that|too|so)\s+"
    r"(?:into|keen on|fond of)|not\s+much|less|fewer|(?:i\s+)?(?:don't|do not)\s+(?:really\s+)?"
    r"(?:love|care for|enjoy))\s+(?:the\s+)?"
    rf"({_WORD}(?:\s*(?:,|or|and|nor|/)\s*{_WORD})*)"
)
_ONLY_RE = re.compile(r"\b(?:only|just|nothing but|exclusively|strictly)\b")
_LIKING_RE = re.compile(
    r"\b(?:mostly|mainly|usually|generally|enjoy(?:s|ed)?|like[ds]?|love[ds]?|prefer(?:s|red)?"
    r"|into|fan of|fond of|favou?rites?|especially|keen on|big on)\b"
)
_CLAUSE_RE = re.compile(r"[^.;!?]+")


def parse_constraints(message: str, catalogue: Catalogue) -> Constraints:
    """Hard constraints and soft preferences stated in ``message`` (module docstring).

    Args:
        message: one user turn, any case (titles in it are best blanked out first:
            :func:`recpilot.data.preferences.read_titles`).
        catalogue: gives the category vocabulary and synonyms.

    Returns:
        Constraints with categories in the catalogue's spelling; empty if none.
    """
    text = message.lower()
    disfavor: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _SOFT_NEG_RE.finditer(text):
        spans.append(m.span())
        disfavor += [c for c in _categories_in(m.group(1), catalogue) if c not in disfavor]
    for a, b in reversed(spans):
        text = text[:a] + " " * (b - a) + text[b:]
    exclude: list[str] = []
    spans = []
    for m in _NEG_RE.finditer(text):
        spans.append(m.span())
        for cat in _categories_in(m.group(1), catalogue):
            if cat not in exclude:
                exclude.append(cat)
    rest = text
    for a, b in reversed(spans):
        rest = rest[:a] + " " + rest[b:]
    include: list[str] = []
    prefer: list[str] = []
    for clause in _CLAUSE_RE.findall(rest):
        found = [c for c in _categories_in(clause, catalogue) if c not in exclude]
        soft = _LIKING_RE.search(clause) and not _ONLY_RE.search(clause)
        target = prefer if soft else include
        target += [c for c in found if c not in target]
    prefer = [c for c in prefer if c not in include]
    disfavor = [c for c in disfavor if c not in include and c not in prefer]

    year_min = year_max = None
    if m := _BETWEEN_RE.search(text):
        year_min, year_max = sorted((int(m.group(1)), int(m.group(2))))
    elif decade := _decade(rest):
        year_min, year_max = decade
    if m := _BEFORE_RE.search(text):  # "before 1980"; negated: "nothing before 1980"
        if _negated(text, m.start()):
            year_min = int(m.group(1))
        else:
            year_max = int(m.group(1)) - 1
    if m := _AFTER_RE.search(text):  # "after 2000"; negated: "no films after 2000"
        if _negated(text, m.start()):
            year_max = int(m.group(1))
        else:
            year_min = int(m.group(1)) + 1
    if m := _SINCE_RE.search(text):
        year_min = int(m.group(1))
    return Constraints(
        include_categories=include,
        exclude_categories=exclude,
        year_min=year_min,
        year_max=year_max,
        prefer_categories=prefer,
        disfavor_categories=[c for c in disfavor if c not in exclude],
    )


_LIFT_RE = re.compile(
    r"\b(?:(?:allow|lift the ban on|ok with|okay with|fine with|happy with"
    r"|(?:you can |please )?(?:include|bring back|show me)\s+(?:some\s+)?(?=\S+\s+again)"
    r"|(?:i\s+)?(?:do\s+)?(?:like|want|love)\s+(?=\S+\s+(?:again|now)\b)"
    r"|changed my mind about)\s*({w})"
    r"|({w})\s+(?:is|are)\s+(?:ok|okay|fine|allowed|alright)(?:\s+(?:again|now))?)\b".format(
        w=r"[a-z][a-z'\-]*(?: fi| fiction| noir)?(?:\s+(?:films?|movies?))?"
    )
)
_AUDIENCE = [
    ("kids", re.compile(r"\b(?:my|our|the)\s+(?:kids|children|son|daughter|toddler)\b")),
    ("partner", re.compile(r"\b(?:my|with)\s+(?:wife|husband|partner|girlfriend|boyfriend)\b")),
    ("family", re.compile(r"\b(?:family|whole family)\b")),
    ("friends", re.compile(r"\b(?:my|with)\s+friends\b")),
    ("alone", re.compile(r"\b(?:by myself|on my own|alone)\b")),
]
_AGE_RE = re.compile(r"\bi(?:'m| am)\s+(\d{1,2})(?:\s+years?\s+old)?\b")
_AGE_BANDS = [(17, "under 18"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54")]


def parse_lifted(message: str, catalogue: Catalogue) -> list[str]:
    """Categories whose exclusion the user lifts: "horror is fine again", "allow horror",
    "you can include horror again", "I do like horror now", "I changed my mind about horror".

    Returns:
        Category names in the catalogue's spelling (empty if none).
    """
    found: list[str] = []
    for m in _LIFT_RE.finditer(message.lower()):
        for cat in _categories_in(m.group(1) or m.group(2), catalogue):
            if cat not in found:
                found.append(cat)
    return found


def parse_facts(message: str) -> dict[str, str]:
    """Facts the user states about themselves: ``audience`` (who they watch with:
    kids, partner, family, friends, alone) and ``age_band`` ("I'm 34" → "25-34")."""
    text = message.lower()
    facts: dict[str, str] = {}
    for audience, pattern in _AUDIENCE:
        if pattern.search(text):
            facts["audience"] = audience
            break
    if m := _AGE_RE.search(text):
        age = int(m.group(1))
        facts["age_band"] = next((band for top, band in _AGE_BANDS if age <= top), "55+")
    return facts
