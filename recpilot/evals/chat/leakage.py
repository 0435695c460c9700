"""The leakage guard: no simulator message may name the target or a distinctive title word.

arXiv:2403.16416 (Zhu et al. 2024) found that LLM user simulators leak the target item
through their words (its title, or words of it), which lets a recommender "find" the
item by string match and inflates conversational metrics. iEvaLM (Wang et al. 2023)
drops seeker replies whose fuzzy match with the title is above 90. This guard does
both: a message leaks when

- its fuzzy partial match with the title (rapidfuzz ``partial_ratio``, both lower-cased
  and with punctuation folded, the title without its year and with a trailing
  ", The" moved to the front) is above ``threshold`` (90, as iEvaLM), or
- it contains, as a whole word, a *distinctive* word of the title: any title word that
  is not a stop word ("the", "of", "and", …) and has at least three letters, or is a
  number ("2" of a sequel).

The rule is strict on purpose — "love" in "Love Jones" is banned too — because a
simulator that cannot say a word loses a hint, while one that can say it may leak.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz

STOP_WORDS = frozenset(
    """a an the of and or in on at to for from with by as is it its be are was my me you your
    his her he she we they our their this that these those not no but so if into out up
    off over under than then there here what who how why when where which one two
    de la le les el los las il lo du des di da der das und et en y o un une""".split()
)
_ARTICLE_SUFFIX = re.compile(r",\s*(the|a|an|la|le|les|el|il|das|der|die)\b", re.IGNORECASE)
_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def fold(text: str) -> str:
    """Lower-case ASCII form of ``text``: accents stripped, punctuation to spaces."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9' ]+", " ", ascii_text.lower()).strip()


def clean_title(title: str) -> str:
    """``"Godfather, The (1972)"`` → ``"The Godfather"``: no year, article in front."""
    text = _YEAR_SUFFIX.sub("", title).strip()
    match = _ARTICLE_SUFFIX.search(text)
    if match and text[match.end() :].strip(" )") == "":
        text = f"{match.group(1)} {text[: match.start()]}"
    return text.strip()


def words(text: str) -> list[str]:
    """The folded words of ``text`` (``"it's"`` stays one word)."""
    return _WORD.findall(fold(text))


def distinctive_words(title: str) -> set[str]:
    """Words of ``title`` a simulator must never say (see the module docstring).

    Args:
        title: the catalogue title, with or without a ``(year)``; alternative titles in
            parentheses count too ("City of Lost Children (Cité des enfants perdus)").

    Returns:
        The folded words; possessive ``'s`` is also banned without it ("schindler").
    """
    out: set[str] = set()
    for word in words(_YEAR_SUFFIX.sub("", title)):
        base = word.split("'")[0]
        for w in {word, base}:
            if w.isdigit() or (len(w) >= 3 and w not in STOP_WORDS):
                out.add(w)
    return out


@dataclass(frozen=True)
class LeakageGuard:
    """Checks messages against one target's title.

    Args:
        title: the target's catalogue title.
        threshold: fuzzy partial-match score (0–100) above which a message leaks
            (iEvaLM: 90).
    """

    title: str
    threshold: float = 90.0

    @property
    def banned(self) -> set[str]:
        """The distinctive title words (:func:`distinctive_words`)."""
        return distinctive_words(self.title)

    def leak(self, message: str) -> str | None:
        """Why ``message`` leaks the target, or None when it does not.

        Returns:
            ``"fuzzy title match N"`` or ``"title word 'w'"``; None for a clean message.
        """
        said = set(words(message))
        for word in sorted(self.banned):
            if word in said or f"{word}'s" in said:
                return f"title word {word!r}"
        name = fold(clean_title(self.title))
        if len(name) >= 4:
            score = fuzz.partial_ratio(name, fold(message))
            if score > self.threshold:
                return f"fuzzy title match {score:.0f}"
        return None

    def clean(self, message: str) -> bool:
        """True when ``message`` does not leak (``leak`` is None)."""
        return self.leak(message) is None
