"""An item's facts, and the code fact-check of text the LLM wrote about it.

The survey's "seed scenarios" (item descriptions, ad copy) are only worth shipping if
they say nothing the data does not back. :func:`check_facts` is deliberately strict
and simple — it checks the claims a reader would take as facts:

- **years and decades**: every year (1800–2099) must be the item's year or appear in
  its text; a decade ("1990s", "the 90s") must contain the item's year;
- **categories**: a catalogue category named in the text (whole word, any case) must be
  one of the item's categories, or appear in its title or text;
- **numbers**: every other number must be one of the item's figures (its ratings count,
  mean rating to 1 or 2 decimals, the liked share in percent, the rating scale's top)
  or appear in its title or text;
- **people and names**: a run of two or more capitalised words inside a sentence (e.g.
  "directed by Steven Spielberg") must appear in the title or text. A sentence's first
  word is not counted as part of a name ("Spielberg …" at the start is not checked),
  so a name that opens a sentence with only its first word is missed — a known gap.

The check returns the problems as sentences; an empty list means the text passed.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import BaseModel

from recpilot.data.catalogue import Catalogue

_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)(s?)\b")
_SHORT_DECADE = re.compile(r"(?<![\w'’])['’]?([0-9]0)s\b")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w])")
_WORD = re.compile(r"[A-Z][a-zA-Z'’\-]+|[a-zA-Z'’\-]+|[.!?;:]")
# capitalised words that start names of nothing: pronouns, articles, weekdays of prose
_NOT_NAMES = {
    "A", "An", "The", "This", "That", "These", "Those", "It", "Its", "I", "You", "Your",
    "We", "Our", "They", "Their", "He", "She", "His", "Her", "And", "But", "Or", "If",
    "With", "For", "From", "In", "On", "At", "Of", "To", "By", "As", "So", "Don't",
    "Watch", "See", "Join", "Discover", "Experience", "Enjoy", "Get", "Grab", "Now",
}


class ItemFacts(BaseModel):
    """What the data says about one item: the only facts a generated text may state.

    Attributes:
        item_id, title, year, categories, text: the catalogue row (``year`` None when
            unknown, ``text`` "" when the item has none).
        noun: what an item is called in this dataset (``movie``, ``song``; dataset meta).
        n_ratings: number of interactions with the item.
        mean_rating: mean rating over them (None without explicit ratings).
        liked_share: fraction of interactions that count as liked (0–1).
        scale_max: the highest rating in the dataset (e.g. 5.0), None without ratings.
    """

    item_id: str
    title: str
    year: int | None
    categories: list[str]
    text: str
    noun: str = "item"
    n_ratings: int
    mean_rating: float | None
    liked_share: float
    scale_max: float | None

    def lines(self) -> str:
        """The facts as prompt lines (what the LLM is allowed to use)."""
        out = [f"Title: {self.title}"]
        out.append(f"Year: {self.year}" if self.year is not None else "Year: unknown")
        if self.categories:
            out.append("Categories: " + ", ".join(self.categories))
        if self.text.strip():
            out.append("Text: " + self.text.strip())
        stats = f"Ratings: {self.n_ratings} users"
        if self.mean_rating is not None and self.scale_max:
            stats += f", mean {self.mean_rating:.2f} out of {self.scale_max:g}"
        stats += f", {round(self.liked_share * 100)}% liked it"
        out.append(stats)
        return "\n".join(out)


def item_facts(catalogue: Catalogue, item_id: str, noun: str = "item") -> ItemFacts:
    """The facts of ``item_id``: its catalogue row and its rating statistics.

    Args:
        catalogue: the loaded dataset.
        item_id: a catalogue item id.
        noun: the dataset's item noun (``DatasetMeta.item_noun``).

    Raises:
        ValueError: ``item_id`` is not in the catalogue.
    """
    if not catalogue.has(item_id):
        raise ValueError(f"unknown item id {item_id!r}: not in the catalogue")
    item = catalogue.get(item_id)
    inter = catalogue.interactions
    rows = inter[inter["item_id"] == item_id]
    ratings = rows["rating"].to_numpy(dtype=float) if "rating" in rows else np.empty(0)
    all_ratings = inter["rating"].to_numpy(dtype=float) if "rating" in inter else np.empty(0)
    explicit = all_ratings.size > 0 and np.unique(all_ratings).size > 1
    liked = catalogue.liked.mask(rows) if len(rows) else np.empty(0, dtype=bool)
    return ItemFacts(
        item_id=item.item_id,
        title=item.title,
        year=item.year,
        categories=list(item.categories),
        text=item.text or "",
        noun=noun,
        n_ratings=len(rows),
        mean_rating=float(ratings.mean()) if explicit and ratings.size else None,
        liked_share=float(liked.mean()) if liked.size else 0.0,
        scale_max=float(all_ratings.max()) if explicit else None,
    )


def _allowed_numbers(facts: ItemFacts) -> set[str]:
    allowed = {str(facts.n_ratings), f"{facts.n_ratings:,}", str(round(facts.liked_share * 100))}
    if facts.mean_rating is not None:
        allowed |= {f"{facts.mean_rating:.1f}", f"{facts.mean_rating:.2f}"}
    if facts.scale_max is not None:
        allowed |= {f"{facts.scale_max:g}", f"{facts.scale_max:.1f}"}
    source = f"{facts.title} {facts.text}"
    allowed |= set(_NUMBER.findall(source))
    return allowed


def _names(text: str) -> list[str]:
    """Runs of ≥ 2 capitalised words inside sentences (a sentence's first word excluded)."""
    names, run, first = [], [], True
    for token in _WORD.findall(text):
        if token in ".!?;:":
            if len(run) >= 2:
                names.append(" ".join(run))
            run, first = [], True
            continue
        if token[0].isupper() and not first and token not in _NOT_NAMES:
            run.append(token)
        else:
            if len(run) >= 2:
                names.append(" ".join(run))
            run = []
        first = False
    if len(run) >= 2:
        names.append(" ".join(run))
    return names


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def backed_sentences(text: str, facts: ItemFacts, catalogue: Catalogue) -> tuple[str, list[str]]:
    """``text`` without its sentences that fail :func:`check_facts`.

    Args:
        text: what the LLM wrote.
        facts, catalogue: as for :func:`check_facts`.

    Returns:
        ``(kept text, dropped sentences)``; the kept text is "" when no sentence passes.
    """
    kept, dropped = [], []
    for sentence in _SENTENCE.split(text.strip()):
        (dropped if check_facts(sentence, facts, catalogue) else kept).append(sentence)
    return " ".join(kept), dropped


def check_facts(text: str, facts: ItemFacts, catalogue: Catalogue) -> list[str]:
    """Problems of ``text`` as a statement about the item (see the module docstring).

    Args:
        text: what the LLM wrote.
        facts: :func:`item_facts` of the item it is about.
        catalogue: for the category vocabulary.

    Returns:
        One sentence per unsupported claim, e.g. ``"year 1994 is not the item's year
        (1995)"``; ``[]`` when every checked claim is backed by the data.
    """
    problems: list[str] = []
    source = f"{facts.title} {facts.text}".lower()
    for year, plural in _YEAR.findall(text):
        y = int(year)
        if plural:
            if facts.year is None or not y <= facts.year < y + 10:
                problems.append(f"decade {year}s does not contain the {facts.noun}'s year "
                                f"({facts.year or 'unknown'})")  # fmt: skip
        elif y != facts.year and year not in source:
            problems.append(f"year {year} is not the {facts.noun}'s year "
                            f"({facts.year or 'unknown'})")  # fmt: skip
    for short in _SHORT_DECADE.findall(text):
        if facts.year is None or facts.year % 100 // 10 != int(short) // 10:
            problems.append(f"decade '{short}s does not contain the {facts.noun}'s year "
                            f"({facts.year or 'unknown'})")  # fmt: skip
    own = {c.lower() for c in facts.categories}
    for category in catalogue.category_vocabulary():
        low = category.lower()
        if low in own or low in source:
            continue
        if re.search(rf"(?<![\w-]){re.escape(low)}(?![\w-])", text.lower()):
            problems.append(f"category {category!r} is not one of the {facts.noun}'s "
                            f"({', '.join(facts.categories) or 'none'})")  # fmt: skip
    allowed = _allowed_numbers(facts)
    without_years = _SHORT_DECADE.sub(" ", _YEAR.sub(" ", text))
    for number in _NUMBER.findall(without_years):
        if number not in allowed and number.replace(",", "") not in allowed:
            problems.append(f"number {number} is not in the {facts.noun}'s data")
    for name in _names(text):
        words = name.split()
        # a name counts as backed when the data has it, or all its words are the title's
        if name.lower() not in source and not all(w.lower() in source for w in words):
            problems.append(f"name {name!r} is not in the {facts.noun}'s title or text")
    return problems
