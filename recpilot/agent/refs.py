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
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
    # a few non-English ordinals (fr, de, es)
    "premier": 1, "première": 1, "deuxième": 2, "troisième": 3, "erste": 1, "ersten": 1,
    "zweite": 2, "zweiten": 2, "dritte": 3, "dritten": 3, "primero": 1, "primera": 1,
    "segundo": 2, "segunda": 2, "tercero": 3, "tercera": 3,
}  # fmt: skip
CARDINALS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
             "eight": 8, "nine": 9, "ten": 10}  # fmt: skip
_LAST_WORDS = r"last|final|dernier|dernière|letzte[nm]?|último|última"
_ORD = (
    r"(?P<ord>" + "|".join(sorted(ORDINALS, key=len, reverse=True))
    + r"|\d{1,2}(?:st|nd|rd|th)|" + _LAST_WORDS + r")"
)
_ARTICLE = r"(?:the|le|la|der|die|das|den|el)"
_NOUN = r"(?:one|film|movie|item|pick|title|suggestion|choice|option|entry)"
_CARD = r"(?P<card>\d{1,2}|" + "|".join(CARDINALS) + r")"
_MARKER = r"(?:#\s*|no\.\s*|nr\.?\s*|number\s+)"
# a whole reference as the controller writes it: "#2", "2", "number two", "item 3",
# "the second one", "2nd", "last", "the last film" — never "Seven" or "Last Action Hero"
_REF = re.compile(
    rf"^(?:(?:{_MARKER}|no\s+|item\s+|pick\s+)?(?P<digits>\d{{1,2}})|{_MARKER}{_CARD}"
    rf"|(?:{_ARTICLE}\s+)?{_ORD}(?:\s+{_NOUN})?)$"
)
# references inside a message: "#3", "number 3", "the second one", "the 2nd", "the last
# film", "the third" (article needed without a noun); "the first two" → #1, #2
_MARKED_IN_TEXT = re.compile(rf"{_MARKER}{_CARD}\b")
_ORD_IN_TEXT = re.compile(
    rf"\b(?:(?P<art>{_ARTICLE})\s+)?{_ORD}(?:\s+(?P<noun>{_NOUN})\b)?"
    r"(?!\s+(?:\d|one|two|three|four|five|six|seven|eight|nine|ten|time|times|half|place"
    r"|thing|things|part|step|day|days|week|night|year|years|decade|minute|minutes|hour"
    r"|chapter|season|episode|sequel|ones|films|movies|items|picks|titles)\b)"
)
_FIRST_N = re.compile(r"\b(?:the\s+)?first\s+(two|three|four|five|[2-5])\b")


def _ordinal_value(word: str, n_shown: int) -> int:
    """1-based position an ordinal word names (a "last" word: ``n_shown``)."""
    if re.fullmatch(_LAST_WORDS, word):
        return n_shown
    return ORDINALS.get(word) or int(word[:-2])


def position_of(ref: str, n_shown: int) -> int | None:
    """The 0-based position in the shown list that ``ref`` names, or None.

    ``ref`` must be a whole reference: "#2", "2", "number 2", "number two", "the second
    one", "2nd", "the 2nd" → 1; "last", "the last one/film" → n_shown - 1. A title that
    contains such a word ("Last Action Hero", "The Last Emperor") or is a bare cardinal
    ("Seven", a film) is no position.

    Args:
        ref: what the controller wrote.
        n_shown: items shown in the thread's previous list.

    Returns:
        A position in ``range(n_shown)``, or None (no reference, or out of range).
    """
    text = " ".join(ref.strip().lower().split()).strip(" .!?")
    if not n_shown or not text or not (m := _REF.match(text)):
        return None
    if m.group("digits") or m.group("card"):
        number = m.group("digits") or m.group("card")
        pos = int(number) - 1 if number.isdigit() else CARDINALS[number] - 1
    else:
        pos = _ordinal_value(m.group("ord"), n_shown) - 1
    return pos if 0 <= pos < n_shown else None


def _is_title(ref: str, catalogue: Catalogue) -> bool:
    """Whether ``ref`` is, word for word, a catalogue title (folded; score ≥ 99)."""
    return bool(catalogue.search_title(ref, limit=1, min_score=99))


def resolve_item(ref: str, shown: list[str], catalogue: Catalogue) -> str | None:
    """The catalogue id ``ref`` names, or None when it names nothing known.

    Tried in order: a position in ``shown`` (:func:`position_of`; an ordinal phrase
    that is word for word a catalogue title counts as the title); an id in ``shown``;
    a title among the shown items; a title in the catalogue (a named title, else a
    fuzzy match scoring ≥ 88).
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
    if pos is not None and not (pos_by_marker(text) is None and _is_title(text, catalogue)):
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


def pos_by_marker(text: str) -> int | None:
    """The number of "#3", "3", "number 3", "no. 3", or None when ``text`` is not one."""
    m = re.fullmatch(rf"\s*(?:{_MARKER})?(\d{{1,2}})\s*", text.lower())
    return int(m.group(1)) if m else None


def _title_spans(text: str, shown: list[str], catalogue: Catalogue | None) -> list[range]:
    """Character spans of ``text`` that are titles: catalogue titles the message names
    (:func:`find_mentions`) and titles of the shown items, in any case."""
    if catalogue is None:
        return []
    spans = [range(m.start, m.end) for m in find_mentions(catalogue, text)]
    low = text.lower()
    for item_id in shown:
        if not catalogue.has(item_id):
            continue
        title = re.sub(r"\s*\([^()]*\)", "", catalogue.get(item_id).title).strip().lower()
        for form in {title, _article_first_lower(title)}:
            if len(form) >= 3:
                spans += [range(m.start(), m.end())
                          for m in re.finditer(rf"\b{re.escape(form)}\b", low)]  # fmt: skip
    return spans


def _article_first_lower(title: str) -> str:
    """``"last emperor, the"`` → ``"the last emperor"`` (lower case in and out)."""
    m = re.fullmatch(r"(.+), (the|a|an|les?|la|l'|der|die|das|el|il)", title)
    return f"{m.group(2)} {m.group(1)}" if m else title


def references_in(
    text: str, shown: list[str], catalogue: Catalogue | None = None
) -> list[str]:
    """Positional references in a user's message, as "#n" strings, in text order.

    Counted: "#3", "number 3", "number three", an ordinal with an article or a noun
    ("the second one", "the 2nd", "the third", "second film", "the last one"), and
    "the first two/three". Not counted: a bare cardinal ("three movies", "give me two
    more", "Seven"), an ordinal followed by a plural or a count ("the last three", "the
    first time"), an ordinal inside a title the message names or a shown item's title
    ("Last Action Hero", "The Last Emperor"; needs ``catalogue``), and a
    capitalised ordinal followed by a capitalised word (a title not in the catalogue).

    Args:
        text: the user's message.
        shown: ids shown in the thread's previous list, in order ([] → no references).
        catalogue: the loaded catalogue (titles to skip); None skips no titles.

    Returns:
        ``["#n", ...]`` without duplicates, each within ``1..len(shown)``.
    """
    if not shown:
        return []
    low = text.lower()
    titles = _title_spans(text, shown, catalogue)

    def in_title(pos: int) -> bool:
        return any(pos in span for span in titles)

    out: list[tuple[int, str]] = []
    for m in _MARKED_IN_TEXT.finditer(low):
        card = m.group("card")
        n = int(card) if card.isdigit() else CARDINALS[card]
        if 1 <= n <= len(shown) and not in_title(m.start()):
            out.append((m.start(), f"#{n}"))
    for m in _FIRST_N.finditer(low):
        if in_title(m.start()):
            continue
        n = CARDINALS.get(m.group(1)) or int(m.group(1))
        out += [(m.start() + i, f"#{i + 1}") for i in range(min(n, len(shown)))]
    for m in _ORD_IN_TEXT.finditer(low):
        word_at = m.start("ord")
        if not (m.group("art") or m.group("noun")) or in_title(word_at):
            continue
        after = text[m.end("ord"):].lstrip()
        if text[word_at].isupper() and after[:1].isupper() and not m.group("noun"):
            continue  # "The Last Emperor": a title the catalogue may not have
        n = _ordinal_value(m.group("ord"), len(shown))
        if 1 <= n <= len(shown):
            out.append((m.start(), f"#{n}"))
    seen: set[str] = set()
    result = []
    for _, ref in sorted(out):
        if ref not in seen:
            seen.add(ref)
            result.append(ref)
    return result
