"""Titles named in free text, found without an LLM: "I loved Fargo (1996) and The
Usual Suspects" → the catalogue ids of *Fargo* and *The Usual Suspects*.

The text is split into word tokens and every run of tokens is looked up among the
catalogue's title forms (main title, alternative title, with and without a leading
article, folded like :meth:`~recpilot.data.catalogue.Catalogue.search_title` folds),
longest run first, without overlaps. Two guards keep ordinary words from becoming
titles ("heat", "seven", "speed" are films):

- a one-word title counts only when written capitalised and not as a sentence's first
  word, or when a year follows it ("Heat (1995)");
- a longer run counts when a year follows it, or when at least one of its words is
  capitalised, or when it has two words of four or more letters ("star wars").

A year right after the title ("Titanic (1997)") picks that year's item among
same-titled ones; otherwise the most popular one is taken.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from recpilot.data.catalogue import Catalogue, _article_first, _fold

_TOKEN = re.compile(r"[^\W_]+")
_YEAR = re.compile(r"^(18|19|20)\d\d$")
_MAX_WORDS = 12
_SENTENCE_END = re.compile(r"[.!?;:]\s*$")


@dataclass(frozen=True)
class Mention:
    """One title found in a text.

    Attributes:
        item_id: the catalogue id.
        start, end: character offsets of the title in the text (the year, when given,
            inside them: ``text[start:end]`` is e.g. ``"Fargo (1996)"``).
    """

    item_id: str
    start: int
    end: int


def _key(text: str) -> str:
    """:func:`_fold` with runs of spaces collapsed: "Mrs. Doubtfire" folds to "mrs  doubtfire"
    (the full stop becomes a space), the message's words join as "mrs doubtfire"."""
    return " ".join(_fold(text).split())


def _plain(word: str) -> str:
    folded = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()


class TitleIndex:
    """Folded title forms of a catalogue → item positions (built once per catalogue).

    Args:
        catalogue: the loaded catalogue.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.forms: dict[str, list[int]] = {}
        years = catalogue.items["year"].to_numpy(dtype="float64", na_value=np.nan)
        self.years = years
        for pos, title in enumerate(catalogue.items["title"]):
            main = _article_first(re.sub(r"\s*\([^()]*\)", "", title).strip())
            alts = [_article_first(a.strip()) for a in re.findall(r"\(([^()]*)\)", title)]
            for form in {_key(main), *(_key(a) for a in alts if not a.isdigit())}:
                if form:
                    self.forms.setdefault(form, []).append(pos)

    def _pick(self, positions: list[int], year: int | None) -> int:
        if year is not None:
            same = [p for p in positions if self.years[p] == year]
            if same:
                positions = same
        return max(positions, key=lambda p: self.catalogue.popularity[p])

    def find(self, text: str) -> list[Mention]:
        """Titles named in ``text``, in the order they appear (no duplicates).

        Args:
            text: a user's message.

        Returns:
            :class:`Mention` per title found (see the module docstring for the rules).
        """
        tokens = list(_TOKEN.finditer(text))
        words = [_plain(t.group()) for t in tokens]
        found: list[Mention] = []
        seen: set[str] = set()
        i = 0
        while i < len(tokens):
            match = None
            for n in range(min(_MAX_WORDS, len(tokens) - i), 0, -1):
                gram = " ".join(words[i : i + n])
                positions = self.forms.get(_key(gram))
                if not positions:
                    continue
                nxt = i + n
                year = int(words[nxt]) if nxt < len(words) and _YEAR.match(words[nxt]) else None
                if not self._plausible(text, tokens[i : i + n], year is not None):
                    continue
                end = tokens[nxt].end() if year is not None else tokens[nxt - 1].end()
                if year is not None and end < len(text) and text[end] == ")":
                    end += 1
                match = (self._pick(positions, year), n + (year is not None), end)
                break
            if match is None:
                i += 1
                continue
            pos, width, end = match
            item_id = str(self.catalogue.ids[pos])
            if item_id not in seen:
                seen.add(item_id)
                found.append(Mention(item_id, tokens[i].start(), end))
            i += width
        return found

    def franchise(self, name: str) -> list[str]:
        """Items of a franchise: every title that is ``name`` or starts with it.

        ``"star trek"`` gives *Star Trek: First Contact*, *Star Trek: Generations*, …;
        matched on folded title forms, whole words only ("alien" gives *Alien* and
        *Alien 3*, not *Aliens*).

        Args:
            name: a title or franchise name as the user wrote it.

        Returns:
            Item ids, most popular first ([] for a name of under 3 letters).
        """
        key = _key(name)
        if len(key) < 3:
            return []
        positions = {p for form, ps in self.forms.items()
                     if form == key or form.startswith(key + " ") for p in ps}  # fmt: skip
        ranked = sorted(positions, key=lambda p: -self.catalogue.popularity[p])
        return [str(self.catalogue.ids[p]) for p in ranked]

    @staticmethod
    def _plausible(text: str, run: list[re.Match[str]], has_year: bool) -> bool:
        if has_year:
            return True
        words = [t.group() for t in run]
        if len(words) == 1:
            first_of_sentence = not text[: run[0].start()].strip() or bool(
                _SENTENCE_END.search(text[: run[0].start()])
            )
            return words[0][0].isupper() and not first_of_sentence and len(words[0]) >= 3
        if any(w[0].isupper() for w in words[1:]) or (
            words[0][0].isupper() and len(words) >= 2
        ):
            return True
        return sum(len(w) >= 4 for w in words) >= 2


def title_index(catalogue: Catalogue) -> TitleIndex:
    """The catalogue's :class:`TitleIndex`, built on first use and kept on it."""
    index = getattr(catalogue, "_title_index", None)
    if index is None:
        index = TitleIndex(catalogue)
        catalogue._title_index = index  # type: ignore[attr-defined]
    return index


def find_mentions(catalogue: Catalogue, text: str) -> list[Mention]:
    """Titles named in ``text``: :meth:`TitleIndex.find` on the catalogue's index.

    Args:
        catalogue: the loaded catalogue.
        text: free text.

    Returns:
        One :class:`Mention` per title, in text order.
    """
    return title_index(catalogue).find(text)
