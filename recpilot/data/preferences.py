"""Soft and hard, positive and negative preferences over a catalogue (RecBot's split).

RecBot (Zhang et al., "Interactive Recommendation Agent with Active User Commands",
2025) separates what a user says into hard constraints (filters: "only dramas", "no
horror", "nothing before 1990") and soft preferences (boosts: "mostly dramas", "I like
thrillers", "not a big fan of musicals"). Hard ones live in
:class:`~recpilot.data.catalogue.Constraints`' filter fields and are applied by
``Catalogue.allowed_mask``; soft ones in its ``prefer_categories`` /
``disfavor_categories`` and are turned here into one score per item that recall and
coarse ranking add to theirs.

Negative preferences about *titles* ("I hate Star Wars", "avoid the Batman films") are
hard: the title, every title of its franchise (title prefix, e.g. *Batman Returns*,
*Batman Forever*) and items whose text embedding is nearly the same as the title's
(sequels under other names; cosine ≥ ``SEQUEL_SIMILARITY``) are excluded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from recpilot.data.catalogue import Catalogue, Constraints
from recpilot.data.mentions import find_mentions, title_index

SEQUEL_SIMILARITY = 0.9  # item-text cosine above which an item counts as the same franchise
# A negation directly before a title ("I hate Batman", "no Star Wars please", "nothing
# with Batman", "anything except Alien", "I'd rather not watch Heat"): the one reading of
# negated titles (the rules controller and the understand step both use read_titles).
_NEGATION_BEFORE = (
    r"(?:hate[ds]?|hating|avoid|can't stand|cannot stand|dislike[ds]?|detest(?:ed)?"
    r"|no more|no|not|never|nothing(?:\s+(?:like|with|from|by))?|anything\s+(?:but|except)"
    r"|except|without|skip|rather not(?:\s+(?:watch|see))?|sick of|tired of)"
)
# ... or a negated kind with the title as its example ("no slashers like Scream", "I hate
# horror movies such as Alien"): one or two words between, no punctuation
_AVOID_RE = re.compile(
    rf"\b{_NEGATION_BEFORE}\s+(?:(?:[\w'-]+\s+){{1,2}}(?:like|such\s+as)\s+)?(?:the\s+|any\s+)?$",
    re.IGNORECASE,
)
# a capitalised name right after a negation: a franchise the catalogue has no exact title
# for ("no more Star Trek" → every "Star Trek…" title)
_AVOIDED_NAME_RE = re.compile(
    rf"\b(?i:{_NEGATION_BEFORE})\s+(?:the\s+)?((?:[A-Z][\w'’:-]*\s?){{1,4}})"
)


def preference_scores(catalogue: Catalogue, constraints: Constraints) -> np.ndarray | None:
    """Soft-preference score of every item, or None when no soft preference is set.

    ``score(i) = share of prefer_categories item i has − share of disfavor_categories it
    has``, so in [-1, 1]: an item with both preferred genres of "mostly Drama and
    Thriller" gets 1, with one of them 0.5. Unknown category names match nothing.

    Args:
        catalogue: the items.
        constraints: read for ``prefer_categories`` and ``disfavor_categories``.

    Returns:
        ``(n_items,)`` float32 over catalogue positions, or None.
    """
    if not constraints.has_preferences():
        return None
    score = np.zeros(len(catalogue.ids), dtype=np.float32)
    for names, sign in ((constraints.prefer_categories, 1.0),
                        (constraints.disfavor_categories, -1.0)):  # fmt: skip
        for name in names:
            has = catalogue.allowed_mask(Constraints(include_categories=[name]))
            score += np.float32(sign / len(names)) * has.astype(np.float32)
    return score


def apply_mode(constraints: Constraints, mode: Literal["soft", "hard"]) -> Constraints:
    """``constraints`` under the genre-preference setting.

    Args:
        constraints: as read from the user.
        mode: ``"soft"`` keeps them; ``"hard"`` turns preferred categories into a filter
            (``include_categories``) and disfavoured ones into exclusions — the behaviour
            before soft preferences existed, kept for comparison (cold-start table).

    Returns:
        A new :class:`Constraints`.
    """
    if mode == "soft" or not constraints.has_preferences():
        return constraints
    include = list(dict.fromkeys([*constraints.include_categories,
                                  *constraints.prefer_categories]))  # fmt: skip
    exclude = list(dict.fromkeys([*constraints.exclude_categories,
                                  *constraints.disfavor_categories]))  # fmt: skip
    return constraints.model_copy(
        update={
            "include_categories": [c for c in include if c not in exclude],
            "exclude_categories": exclude,
            "prefer_categories": [],
            "disfavor_categories": [],
        }
    )


@dataclass
class TitleReading:
    """Titles found in a message by code (no LLM).

    Attributes:
        liked: ids of titles named positively ("I loved Fargo"), in text order.
        liked_titles: those titles as written (what a tool call names).
        avoided: ids of titles the user hates/avoids, their franchise and near-identical
            items (see the module docstring).
        avoided_titles: the avoided titles or franchise names as written (for the
            trace and for tool calls).
        rest: the message with every title blanked out (so "Star Wars" is not read as
            the category War, nor "Alien" as a genre).
    """

    liked: list[str] = field(default_factory=list)
    liked_titles: list[str] = field(default_factory=list)
    avoided: list[str] = field(default_factory=list)
    avoided_titles: list[str] = field(default_factory=list)
    rest: str = ""


def read_titles(
    catalogue: Catalogue,
    message: str,
    item_vectors: np.ndarray | None = None,
    sequel_similarity: float = SEQUEL_SIMILARITY,
) -> TitleReading:
    """Find the titles named in ``message`` and whether each is liked or avoided.

    A title is avoided when a negation ("hate", "avoid", "no", "nothing with", "anything
    except", "rather not watch", "sick of", …) directly precedes it, or precedes a kind of
    which it is the example ("no slashers like Scream"); otherwise it counts as
    liked (users name titles as examples of what they want). A capitalised name after
    such a negation that is no catalogue title but starts titles ("no more Star Trek")
    avoids that franchise.

    Args:
        catalogue: the items.
        message: the user's message.
        item_vectors: ``(n_items, dim)`` L2-normalised item-text embeddings, or None (no
            text-similarity expansion of avoided titles).
        sequel_similarity: cosine threshold of that expansion.

    Returns:
        A :class:`TitleReading`.
    """
    reading = TitleReading(rest=message)
    index = title_index(catalogue)
    mentions = find_mentions(catalogue, message)
    spans = [(m.start, m.end) for m in mentions]

    def avoid(written: str, family: list[str]) -> None:
        reading.avoided_titles.append(written)
        reading.avoided = list(dict.fromkeys([*reading.avoided, *family]))

    for m in mentions:
        written = message[m.start : m.end]
        if _AVOID_RE.search(message[max(0, m.start - 30) : m.start]):
            family = [m.item_id, *index.franchise(re.sub(r"\s*\(\d{4}\)$", "", written))]
            if item_vectors is not None:
                sims = item_vectors @ item_vectors[catalogue.index_of[m.item_id]]
                family += [str(catalogue.ids[p]) for p in np.flatnonzero(sims >= sequel_similarity)]
            avoid(written, family)
        else:
            reading.liked.append(m.item_id)
            reading.liked_titles.append(written)
    for named in _AVOIDED_NAME_RE.finditer(message):  # franchise names that are no title
        start, end = named.span(1)
        name = named.group(1).strip(" ,.!?")
        if any(a < end and start < b for a, b in spans) or len(name) < 3:
            continue
        family = index.franchise(name)
        if family:
            avoid(name, family)
            spans.append((start, start + len(name)))
    rest = message
    for start, end in sorted(spans, reverse=True):
        rest = rest[:start] + " " + rest[end:]
    reading.rest = rest
    keep = [i for i, t in enumerate(reading.liked) if t not in reading.avoided]
    reading.liked = [reading.liked[i] for i in keep]
    reading.liked_titles = [reading.liked_titles[i] for i in keep]
    return reading
