"""In-memory catalogue over a canonical dataset: items, filters, title search, histories."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel
from rapidfuzz import fuzz, process, utils

from recpilot.data.meta import LikedRule, read_meta

ENRICHMENT_FILE = "enrichment.parquet"  # the active LLM enrichment (recpilot.content.enrich)

# Everyday words → candidate category names, first one present in the vocabulary wins.
# Keys are lower-case with only letters and digits.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "scifi": ("Sci-Fi", "Science Fiction"),
    "sciencefiction": ("Sci-Fi", "Science Fiction"),
    "kids": ("Children's", "Children", "Family"),
    "kid": ("Children's", "Children", "Family"),
    "children": ("Children's", "Children", "Family"),
    "childrens": ("Children's", "Children", "Family"),
    "family": ("Family", "Children's", "Children"),
    "cartoon": ("Animation",),
    "cartoons": ("Animation",),
    "animated": ("Animation",),
    "anime": ("Animation",),
    "scary": ("Horror",),
    "funny": ("Comedy",),
    "comedies": ("Comedy",),
    "romcom": ("Romance",),
    "romantic": ("Romance",),
    "noir": ("Film-Noir",),
    "documentaries": ("Documentary",),
    "doc": ("Documentary",),
    "docs": ("Documentary",),
    "musicals": ("Musical",),
    "westerns": ("Western",),
    "thrillers": ("Thriller",),
    "mysteries": ("Mystery",),
    "fantasies": ("Fantasy",),
}
_FUZZY_CUTOFF = 85.0
_ARTICLE_LAST = re.compile(r"^(.*), (the|a|an|les|la|le|l'|il|el|der|die|das)$", re.IGNORECASE)
_PAREN = re.compile(r"\s*\(([^()]*)\)")
_LEADING_ARTICLE = re.compile(r"^(the|a|an) ")
_AKA = re.compile(r"^a\.k\.a\.?\s*", re.IGNORECASE)


class Constraints(BaseModel):
    """What a user wants of the candidate items: hard filters and soft preferences.

    Hard (applied by :meth:`Catalogue.allowed_mask`): an item that fails one is never
    returned. Soft (read by :func:`recpilot.data.preferences.preference_scores`, a boost
    in recall and coarse ranking; ``allowed_mask`` ignores them): RecBot's split of
    preferences into soft and hard, positive and negative.

    Attributes:
        include_categories: hard: an item must have at least one of these (if any).
        exclude_categories: hard: an item must have none of these.
        year_min, year_max: hard, inclusive bounds; items of unknown year fail any bound.
        exclude_items: hard: item ids never to return (incl. titles and franchises the
            user hates).
        prefer_categories: soft, positive: items with these rank higher.
        disfavor_categories: soft, negative: items with these rank lower.
    """

    include_categories: list[str] = []
    exclude_categories: list[str] = []
    year_min: int | None = None
    year_max: int | None = None
    exclude_items: list[str] = []
    prefer_categories: list[str] = []
    disfavor_categories: list[str] = []

    def merged(self, other: Constraints) -> Constraints:
        """Both sets of constraints at once: lists united (order kept), tighter year bounds."""

        def union(a: list[str], b: list[str]) -> list[str]:
            return list(dict.fromkeys([*a, *b]))

        def pick(a: int | None, b: int | None, best: Callable[[int, int], int]) -> int | None:
            return a if b is None else b if a is None else best(a, b)

        return Constraints(
            include_categories=union(self.include_categories, other.include_categories),
            exclude_categories=union(self.exclude_categories, other.exclude_categories),
            year_min=pick(self.year_min, other.year_min, max),
            year_max=pick(self.year_max, other.year_max, min),
            exclude_items=union(self.exclude_items, other.exclude_items),
            prefer_categories=union(self.prefer_categories, other.prefer_categories),
            disfavor_categories=union(self.disfavor_categories, other.disfavor_categories),
        )

    def has_preferences(self) -> bool:
        """True when a soft preference is set."""
        return bool(self.prefer_categories or self.disfavor_categories)

    def is_empty(self) -> bool:
        """True when no constraint is set (every item passes)."""
        return self == Constraints()


class Item(BaseModel):
    """One catalogue item; ``year`` is None when unknown."""

    item_id: str
    title: str
    year: int | None
    categories: list[str]
    text: str
    description: str = ""
    tags: list[str] = []


class Catalogue:
    """Items and interactions of one canonical dataset, indexed by item position.

    Attributes:
        ids: ``(n_items,)`` object array, position → item id (str).
        index_of: item id → position.
        items: the items frame (``item_id``, ``title``, ``text``, ``categories``, ``year``…).
        interactions: ``user_id``, ``item_id``, ``rating``, ``timestamp``, sorted by user
            then timestamp.
        popularity: ``(n_items,)`` float32, number of interactions per item position.
        liked: the dataset's :class:`~recpilot.data.meta.LikedRule` (what counts as liked).
        enriched: number of items with an LLM description (``recpilot enrich``).
    """

    def __init__(
        self, items: pd.DataFrame, interactions: pd.DataFrame, liked: LikedRule | None = None
    ) -> None:
        """Index the frames (use :meth:`load` to read a dataset folder).

        ``liked`` defaults to :meth:`LikedRule.from_ratings` of ``interactions``.
        """
        self.items = items.reset_index(drop=True)
        self.items["categories"] = [list(c) for c in self.items["categories"]]
        if "description" not in self.items:
            self.items["description"] = ""
        if "tags" not in self.items:
            self.items["tags"] = [[] for _ in range(len(self.items))]
        self.enriched = int((self.items["description"].fillna("") != "").sum())
        self.ids: np.ndarray = self.items["item_id"].to_numpy(dtype=object)
        self.index_of: dict[str, int] = {item_id: pos for pos, item_id in enumerate(self.ids)}
        self.interactions = interactions.sort_values(
            ["user_id", "timestamp"], kind="stable"
        ).reset_index(drop=True)
        self._rows_of_user: dict[str, np.ndarray] = self.interactions.groupby(
            "user_id", sort=False
        ).indices
        positions = self.interactions["item_id"].map(self.index_of).to_numpy(dtype=np.int64)
        self.popularity = np.bincount(positions, minlength=len(self.ids)).astype(np.float32)
        self._years = self.items["year"].to_numpy(dtype="float64", na_value=np.nan)
        self._vocab = sorted({c for cats in self.items["categories"] for c in cats})
        self._cat_index = {c: k for k, c in enumerate(self._vocab)}
        self._cat_lower = {c.lower(): c for c in self._vocab}
        self._cat_key = {_key(c): c for c in self._vocab}
        self._cat_matrix = np.zeros((len(self.ids), len(self._vocab)), dtype=bool)
        for pos, cats in enumerate(self.items["categories"]):
            self._cat_matrix[pos, [self._cat_index[c] for c in cats]] = True
        forms = _title_forms(self.items["title"], self._years)
        unique, inverse = np.unique(np.array(forms, dtype=object), return_inverse=True)
        self._title_forms: list[str] = unique.tolist()
        self._form_of_item = inverse.reshape(len(self.ids), -1)  # (n_items, 4) → unique form
        self._form_len = np.array([len(f) for f in self._title_forms])
        self.liked = liked or LikedRule.from_ratings(self.interactions.get("rating", []))
        # Item fields as plain lists, so that item_at() does not touch pandas per call.
        self._titles: list[str] = self.items["title"].tolist()
        self._texts: list[str] = [t or "" for t in self.items["text"]]
        self._descriptions: list[str] = [d or "" for d in self.items["description"]]
        self._tags: list[list[str]] = [list(t) for t in self.items["tags"]]
        self._categories: list[list[str]] = self.items["categories"].tolist()
        # Per-user history records and liked ids, computed on first use (frames are fixed).
        self._records_of_user: dict[str, list[dict]] = {}
        self._liked_of_user: dict[str, list[str]] = {}
        self._columns: dict[str, list] | None = None  # interactions columns as lists
        self._liked_rows: np.ndarray | None = None  # liked.mask of every interaction row

    @classmethod
    def load(cls, dataset_dir: Path) -> Catalogue:
        """Read ``items.parquet`` and ``interactions.parquet`` from ``dataset_dir``.

        Raises:
            FileNotFoundError: a file is missing; the message says how to fetch data.
        """
        dataset_dir = Path(dataset_dir)
        for name in ("items.parquet", "interactions.parquet"):
            if not (dataset_dir / name).is_file():
                raise FileNotFoundError(
                    f"No dataset at {dataset_dir} ({name} missing). Run "
                    "`recpilot data fetch movielens-100k`, or ingest your own files first."
                )
        liked = None
        if (dataset_dir / "meta.json").is_file():
            liked = read_meta(dataset_dir).liked
        items = pd.read_parquet(dataset_dir / "items.parquet")
        if (dataset_dir / ENRICHMENT_FILE).is_file():  # written by `recpilot enrich`
            extra = pd.read_parquet(dataset_dir / ENRICHMENT_FILE).set_index("item_id")
            items["description"] = items["item_id"].map(extra["description"]).fillna("")
            tags = items["item_id"].map(extra["tags"])
            items["tags"] = [json.loads(t) if isinstance(t, str) else [] for t in tags]
        return cls(items, pd.read_parquet(dataset_dir / "interactions.parquet"), liked)

    def __len__(self) -> int:
        """Number of items."""
        return len(self.ids)

    def has(self, item_id: str) -> bool:
        """True if ``item_id`` is in the catalogue."""
        return item_id in self.index_of

    def get(self, item_id: str) -> Item:
        """The item with this id.

        Raises:
            KeyError: no such item id.
        """
        if item_id not in self.index_of:
            raise KeyError(f"item id {item_id!r} is not in the catalogue ({len(self)} items)")
        return self.item_at(self.index_of[item_id])

    def item_at(self, pos: int) -> Item:
        """The item at position ``pos`` (0 ≤ pos < len(self); IndexError otherwise)."""
        year = self._years[pos]
        return Item(
            item_id=self.ids[pos],
            title=self._titles[pos],
            year=None if np.isnan(year) else int(year),
            categories=list(self._categories[pos]),
            text=self._texts[pos],
            description=self._descriptions[pos],
            tags=list(self._tags[pos]),
        )

    def category_vocabulary(self) -> list[str]:
        """All category names, sorted."""
        return list(self._vocab)

    def normalize_category(self, name: str) -> str | None:
        """Map a user's word to a catalogue category name, or None if nothing fits.

        Tries, in order: case-insensitive exact match; the same ignoring punctuation and
        spaces ("sci fi" → "Sci-Fi"); everyday synonyms ("kids" → "Children's",
        "cartoon" → "Animation", "scary" → "Horror"); a trailing plural "s"; then a
        fuzzy match (rapidfuzz ratio ≥ 85) for typos.
        """
        text = name.strip()
        if not text:
            return None
        if text.lower() in self._cat_lower:
            return self._cat_lower[text.lower()]
        key = _key(text)
        for candidate in (key, key.removesuffix("s")):
            if candidate in self._cat_key:
                return self._cat_key[candidate]
            for synonym in _SYNONYMS.get(candidate, ()):
                if synonym in self._cat_index:
                    return synonym
        match = process.extractOne(
            text,
            self._vocab,
            scorer=fuzz.ratio,
            processor=utils.default_process,
            score_cutoff=_FUZZY_CUTOFF,
        )
        return match[0] if match else None

    def allowed_mask(self, c: Constraints) -> np.ndarray:
        """``(n_items,)`` bool: True where the item satisfies every constraint.

        Category names are matched exactly, then case-insensitively; an unknown name in
        ``include_categories`` matches no item, one in ``exclude_categories`` excludes
        none. Unknown ids in ``exclude_items`` are ignored.
        """
        mask = np.ones(len(self.ids), dtype=bool)
        if c.include_categories:
            cols = self._category_columns(c.include_categories)
            mask &= self._cat_matrix[:, cols].any(axis=1)
        if c.exclude_categories:
            mask &= ~self._cat_matrix[:, self._category_columns(c.exclude_categories)].any(axis=1)
        if c.year_min is not None:
            mask &= self._years >= c.year_min  # NaN (unknown year) compares False
        if c.year_max is not None:
            mask &= self._years <= c.year_max
        if c.exclude_items:
            mask[[self.index_of[i] for i in c.exclude_items if i in self.index_of]] = False
        return mask

    def search_title(
        self, query: str, limit: int = 5, min_score: float = 80
    ) -> list[tuple[Item, float]]:
        """Items whose title matches ``query``, best first.

        Case, punctuation, a leading article ("The Usual Suspects" vs the stored
        "Usual Suspects, The"), an alternative title in parentheses and a trailing year
        are all tolerated. The score of an item is the best over its title forms of
        max(ratio, 0.9 × partial_ratio) — the partial term only for titles at least as
        long as the query, so "lord of the rings" finds the longer sequels but "matrix"
        does not find the film "M". Ties go to the more popular item.

        Returns:
            Up to ``limit`` ``(item, score)`` pairs, score in 0–100 and ≥ ``min_score``.
        """
        processed = _fold(_article_first(query.strip()))
        if not processed:
            return []
        forms = self._title_forms
        full = process.cdist([processed], forms, scorer=fuzz.ratio, dtype=np.float32)[0]
        part = process.cdist([processed], forms, scorer=fuzz.partial_ratio, dtype=np.float32)[0]
        part[self._form_len < len(processed)] = 0
        best = np.maximum(full, 0.9 * part)[self._form_of_item].max(axis=1)
        order = np.lexsort((-self.popularity, -best))[:limit]
        return [(self.item_at(int(p)), float(best[p])) for p in order if best[p] >= min_score]

    def known_user(self, user_id: str) -> bool:
        """True if the user has at least one interaction."""
        return user_id in self._rows_of_user

    def user_history(self, user_id: str) -> pd.DataFrame:
        """That user's interactions, oldest first (an empty frame for an unknown user)."""
        rows = self._rows_of_user.get(user_id, np.empty(0, dtype=np.int64))
        return self.interactions.iloc[rows].reset_index(drop=True)

    def user_records(self, user_id: str) -> list[dict]:
        """That user's interactions as ``user_history(user_id).to_dict("records")`` (oldest
        first; ``[]`` for an unknown user), computed once per user and copied per call."""
        records = self._records_of_user.get(user_id)
        if records is None:
            rows = self._rows_of_user.get(user_id, np.empty(0, dtype=np.int64)).tolist()
            columns = self._column_lists().items()
            records = [{c: values[r] for c, values in columns} for r in rows]
            self._records_of_user[user_id] = records
        return [dict(r) for r in records]

    def user_liked_ids(self, user_id: str) -> list[str]:
        """:meth:`liked_ids` of that user's history (``[]`` for an unknown user), computed
        once per user."""
        liked = self._liked_of_user.get(user_id)
        if liked is None:
            if self._liked_rows is None:  # once: the rule is per user, so one pass is exact
                self._liked_rows = self.liked.mask(self.interactions)
            rows = self._rows_of_user.get(user_id, np.empty(0, dtype=np.int64))
            item_ids = self._column_lists()["item_id"]
            liked = [str(item_ids[r]) for r in rows[self._liked_rows[rows]].tolist()]
            self._liked_of_user[user_id] = liked
        return list(liked)

    def _column_lists(self) -> dict[str, list]:
        """The interactions' columns as lists of native Python values (as ``to_dict``
        gives them), built on first use."""
        if self._columns is None:
            self._columns = {c: self.interactions[c].tolist() for c in self.interactions}
        return self._columns

    def liked_ids(self, history: pd.DataFrame | list[dict]) -> list[str]:
        """Item ids of the liked rows of ``history`` (a user's interactions), in order."""
        frame = pd.DataFrame(history) if isinstance(history, list) else history
        if frame.empty:
            return []
        return self.liked.liked_ids(frame)

    def item_text(self, pos: int) -> str:
        """Text to embed for the item at ``pos``.

        ``"Title (Year). Genres: A, B. <text> About: <description> Tags: t1, t2."`` — the
        last two parts only for an item with an active LLM enrichment.
        """
        item = self.item_at(pos)
        parts = [item.title + (f" ({item.year})" if item.year is not None else "") + "."]
        if item.categories:
            parts.append(f"Genres: {', '.join(item.categories)}.")
        if item.text.strip():
            parts.append(item.text.strip())
        if item.description:
            parts.append(f"About: {item.description}")
        if item.tags:
            parts.append(f"Tags: {', '.join(item.tags)}.")
        return " ".join(parts)

    def _category_columns(self, names: list[str]) -> list[int]:
        found = (self._cat_lower.get(n.lower(), n) for n in names)
        return [self._cat_index[n] for n in found if n in self._cat_index]


def _key(text: str) -> str:
    """Lower-case letters and digits only: ``"Sci-Fi"`` → ``"scifi"``."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _title_forms(titles: pd.Series, years: np.ndarray) -> list[str]:
    """Four searchable forms per title, item-major: full, main, alternative, main + year.

    "City of Lost Children, The (Cité des enfants perdus, La)" gives "city of lost
    children cité des enfants perdus la", "city of lost children", "cité des enfants
    perdus", "city of lost children 1995" (each passed through :func:`_fold`).
    """
    forms: list[str] = []
    for title, year in zip(titles, years, strict=True):
        alternatives = [_AKA.sub("", a).strip() for a in _PAREN.findall(title)]
        main = _article_first(_PAREN.sub("", title).strip())
        alt = _article_first(alternatives[-1]) if alternatives else main
        suffix = "" if np.isnan(year) else f" {int(year)}"
        full = " ".join([main, *alternatives])
        forms += [_fold(f) for f in (full, main, alt, main + suffix)]
    return forms


def _fold(text: str) -> str:
    """Lower case, no accents or punctuation, no leading article: "The Cité" → "cite"."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    return _LEADING_ARTICLE.sub("", utils.default_process(plain))


def _article_first(title: str) -> str:
    """``"Usual Suspects, The"`` → ``"The Usual Suspects"``."""
    match = _ARTICLE_LAST.match(title)
    return f"{match.group(2)} {match.group(1)}" if match else title
