"""Item references in a chat: "the second one", "#3", "the last one", a title, an id.

The controller (LLM or rules) names items as it read them; this module turns each
name into a catalogue id, against the items shown earlier in the thread first and the
catalogue's titles second. What resolves to nothing is returned separately so the
caller can drop and record it: an LLM cannot make the agent use an invented item.
"""

from __future__ import annotations

import re

from recpilot.data.catalogue import Catalogue
from recpilot.data.mentions import find_mentions

ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10,
    # a few non-English ordinals (fr, de, es)
    "premier": 1, "première": 1, "deuxième": 2, "troisième": 3, "erste": 1, "ersten": 1,
    "zweite": 2, "zweiten": 2, "dritte": 3, "dritten": 3, "primero": 1, "primera": 1,
    "segundo": 2, "segunda": 2, "tercero": 3, "tercera": 3,
}  # fmt: skip
_LAST = re.compile(r"\b(?:last|final|dernier|dernière|letzte[nm]?|último|última)\b")
_NUMBER = re.compile(r"^\s*(?:#|no\.?\s*|number\s+|nr\.?\s*|item\s+|pick\s+)?(\d{1,2})\s*$")
_ORDINAL_PHRASE = re.compile(
    r"\b(?:the\s+)?(" + "|".join(sorted(ORDINALS, key=len, reverse=True)) + r")"
    r"(?:\s+(?:one|film|movie|item|pick|title))?\b"
)
_NUMBER_IN_TEXT = re.compile(r"(?:#|\bnumber\s+|\bno\.\s*|\bnr\.?\s*)(\d{1,2})\b")


def position_of(ref: str, n_shown: int) -> int | None:
    """The 0-based position in the shown list that ``ref`` names, or None.

    "#2", "2", "number 2", "the second one", "2nd" → 1; "the last one" → n_shown - 1.
    """
    text = ref.strip().lower()
    if not n_shown or not text:
        return None
    if m := _NUMBER.match(text):
        pos = int(m.group(1)) - 1
        return pos if 0 <= pos < n_shown else None
    if _LAST.search(text) and len(text.split()) <= 4:
        return n_shown - 1
    if len(text.split()) <= 4 and (m := _ORDINAL_PHRASE.fullmatch(text.strip(" .!?"))):
        pos = ORDINALS[m.group(1)] - 1
        return pos if 0 <= pos < n_shown else None
    return None


def resolve_item(ref: str, shown: list[str], catalogue: Catalogue) -> str | None:
    """The catalogue id ``ref`` names, or None when it names nothing known.

    Tried in order: a position in ``shown``; an id in ``shown``; a title among the shown
    items; a title in the catalogue (a named title, else a fuzzy match scoring ≥ 88).
    A bare catalogue id not shown in the thread is *not* accepted (an LLM may invent
    ids; titles it names are checked against the catalogue instead).

    Args:
        ref: what the controller wrote (position, id or title).
        shown: ids shown in the thread, in the order the user saw them (latest turn).
        catalogue: the loaded catalogue.
    """
    text = ref.strip()
    if not text:
        return None
    pos = position_of(text, len(shown))
    if pos is not None:
        return shown[pos]
    if text in shown:
        return text
    if text.isdigit():
        return None
    low = text.lower()
    for item_id in shown:
        title = catalogue.get(item_id).title.lower()
        if low in title and len(low) >= 4:
            return item_id
    mentions = find_mentions(catalogue, text)
    if mentions:
        return mentions[0].item_id
    hits = catalogue.search_title(text, limit=1, min_score=88)
    return hits[0][0].item_id if hits else None


def resolve_items(
    refs: list[str], shown: list[str], catalogue: Catalogue
) -> tuple[list[str], list[str]]:
    """Resolve several references; returns (ids without duplicates, refs that failed)."""
    ids: list[str] = []
    failed: list[str] = []
    for ref in refs:
        found = resolve_item(str(ref), shown, catalogue)
        if found is None:
            failed.append(str(ref))
        elif found not in ids:
            ids.append(found)
    return ids, failed


def references_in(text: str, shown: list[str]) -> list[str]:
    """Positional references in a user's message, as "#n" strings ("the second one",
    "number 3", "the last one"), in text order; [] when nothing was shown."""
    low = text.lower()
    out: list[tuple[int, str]] = []
    if not shown:
        return []
    for m in _NUMBER_IN_TEXT.finditer(low):
        n = int(m.group(1))
        if 1 <= n <= len(shown):
            out.append((m.start(), f"#{n}"))
    for m in re.finditer(
        r"\b(?:the\s+)?(" + "|".join(sorted(ORDINALS, key=len, reverse=True)) + r")"
        r"\s+(?:one|film|movie|item|pick|title|suggestion)s?\b",
        low,
    ):
        n = ORDINALS[m.group(1)]
        if 1 <= n <= len(shown):
            out.append((m.start(), f"#{n}"))
    for m in re.finditer(
        r"\b(?:the\s+)?(first|second|third|fourth|fifth|last)\b(?!\s+(?:one|film|movie|item|pick|title))",
        low,
    ):
        word = m.group(1)
        n = len(shown) if word == "last" else ORDINALS[word]
        if 1 <= n <= len(shown) and not any(abs(s - m.start()) < 6 for s, _ in out):
            out.append((m.start(), f"#{n}"))
    for m in re.finditer(r"\b(?:the\s+)?first\s+(two|three|four|five|[2-5])\b", low):
        n = ORDINALS.get(m.group(1)) or int(m.group(1))
        out += [(m.start() + i, f"#{i + 1}") for i in range(min(n, len(shown)))]
    for m in _LAST.finditer(low):
        if not any(abs(s - m.start()) < 12 for s, _ in out):
            out.append((m.start(), f"#{len(shown)}"))
    seen: set[str] = set()
    result = []
    for _, ref in sorted(out):
        if ref not in seen:
            seen.add(ref)
            result.append(ref)
    return result
