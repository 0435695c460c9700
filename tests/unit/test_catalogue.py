"""Tests for recpilot.data.catalogue on real ml-100k and small synthetic catalogues."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recpilot.data.catalogue import Catalogue, Constraints
from recpilot.data.movielens import fetch_movielens_100k


@pytest.fixture(scope="module")
def cat(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    dest = tmp_path_factory.mktemp("ml100k") / "movielens-100k"
    fetch_movielens_100k(dest, from_path=ml100k_dir)
    return Catalogue.load(dest)


def synthetic(n: int, categories: list[str]) -> Catalogue:
    rng = np.random.default_rng(0)
    items = pd.DataFrame(
        {
            "item_id": [str(i) for i in range(n)],
            "title": [f"Film {i}" for i in range(n)],
            "text": "",
            "categories": [list(rng.choice(categories, size=2, replace=False)) for _ in range(n)],
            "year": pd.array([1950 + i % 70 if i % 10 else None for i in range(n)], "Int64"),
        }
    )
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["0"], "rating": [1.0], "timestamp": [0]})
    return Catalogue(items, inter)


def test_load_missing_dataset_says_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="recpilot data fetch movielens-100k"):
        Catalogue.load(tmp_path / "nothing")


def test_indexing_and_popularity(cat: Catalogue) -> None:
    assert len(cat.ids) == 1682 and cat.ids[cat.index_of["50"]] == "50"
    assert cat.popularity.dtype == np.float32 and cat.popularity.sum() == 100000
    assert cat.ids[int(cat.popularity.argmax())] == "50"  # Star Wars, 583 ratings
    assert cat.popularity[cat.index_of["50"]] == 583


def test_get_and_has(cat: Catalogue) -> None:
    item = cat.get("1")
    assert (item.title, item.year, item.categories) == (
        "Toy Story", 1995, ["Animation", "Children's", "Comedy"]
    )  # fmt: skip
    assert cat.has("1682") and not cat.has("1683")
    with pytest.raises(KeyError, match="'9999' is not in the catalogue"):
        cat.get("9999")


def test_no_horror_in_the_nineties(cat: Catalogue) -> None:
    mask = cat.allowed_mask(
        Constraints(exclude_categories=["Horror"], year_min=1990, year_max=1999)
    )
    allowed = cat.items[mask]
    assert len(allowed) > 0
    assert allowed["year"].between(1990, 1999).all()
    assert not any("Horror" in cats for cats in allowed["categories"])
    expected = cat.items["year"].between(1990, 1999).fillna(False) & ~cat.items["categories"].map(
        lambda cats: "Horror" in cats
    )
    assert mask.sum() == expected.sum()
    assert not mask[cat.index_of["267"]]  # unknown year fails any year bound


def test_include_exclude_items_and_unknown_names(cat: Catalogue) -> None:
    mask = cat.allowed_mask(Constraints(include_categories=["film-noir"], exclude_items=["1", "x"]))
    assert mask.sum() == sum("Film-Noir" in c for c in cat.items["categories"])
    assert cat.allowed_mask(Constraints(include_categories=["Nope"])).sum() == 0
    assert cat.allowed_mask(Constraints(exclude_categories=["Nope"])).all()
    assert not cat.allowed_mask(Constraints(exclude_items=["1"]))[cat.index_of["1"]]
    assert cat.allowed_mask(Constraints()).all()


def test_allowed_mask_on_10k_synthetic_items() -> None:
    big = synthetic(10_000, ["A", "B", "C", "D", "E", "F", "G", "H"])
    c = Constraints(
        include_categories=["A", "B"], exclude_categories=["C"], year_min=1980, year_max=2000,
        exclude_items=["1", "2", "3"],
    )  # fmt: skip
    mask = big.allowed_mask(c)
    assert 0 < mask.sum() < 10_000 and not mask[:4].any()


def test_constraints_merged_and_empty() -> None:
    a = Constraints(include_categories=["Drama"], year_min=1990, year_max=2000)
    b = Constraints(include_categories=["Comedy", "Drama"], year_min=1995, exclude_items=["7"])
    m = a.merged(b)
    assert m.include_categories == ["Drama", "Comedy"] and m.exclude_items == ["7"]
    assert (m.year_min, m.year_max) == (1995, 2000)
    assert Constraints().is_empty() and not m.is_empty()
    assert Constraints().merged(Constraints()).is_empty()


@pytest.mark.parametrize(
    ("query", "item_id"),
    [
        ("toy story", "1"),
        ("TOY STORY", "1"),
        ("Toy Story (1995)", "1"),
        ("usual suspects", "12"),
        ("The Usual Suspects", "12"),
        ("Usual Suspects, The", "12"),
        ("godfater", "127"),
        ("se7en", "11"),
    ],
)
def test_search_title(cat: Catalogue, query: str, item_id: str) -> None:
    hits = cat.search_title(query)
    assert hits and hits[0][0].item_id == item_id and hits[0][1] >= 90


def test_search_title_limits_and_rejects(cat: Catalogue) -> None:
    assert cat.search_title("qwxzv plorft") == []
    assert cat.search_title("") == []
    hits = cat.search_title("star", limit=3, min_score=0)
    assert len(hits) == 3 and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert all(s >= 95 for _, s in cat.search_title("star wars", min_score=95))


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("horror", "Horror"),
        ("sci fi", "Sci-Fi"),
        ("Science Fiction", "Sci-Fi"),
        ("kids", "Children's"),
        ("family", "Children's"),
        ("cartoon", "Animation"),
        ("animated", "Animation"),
        ("scary", "Horror"),
        ("film noir", "Film-Noir"),
        ("westerns", "Western"),
        ("Thriler", "Thriller"),
        ("cooking", None),
        ("", None),
    ],
)
def test_normalize_category(cat: Catalogue, word: str, expected: str | None) -> None:
    assert cat.normalize_category(word) == expected


def test_normalize_category_uses_the_catalogue_vocabulary() -> None:
    small = synthetic(10, ["Children", "Sci-Fi", "Comedy"])
    assert small.normalize_category("kids") == "Children"
    assert small.normalize_category("cartoon") is None
    assert small.category_vocabulary() == ["Children", "Comedy", "Sci-Fi"]


def test_user_history(cat: Catalogue) -> None:
    history = cat.user_history("1")
    assert len(history) == 272 and set(history["user_id"]) == {"1"}
    assert history["timestamp"].is_monotonic_increasing
    assert cat.known_user("1") and not cat.known_user("nobody")
    assert cat.user_history("nobody").empty


def test_item_text(cat: Catalogue) -> None:
    pos = cat.index_of["1"]
    assert cat.item_text(pos) == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert cat.item_text(cat.index_of["267"]) == "unknown."


def test_item_text_includes_free_text() -> None:
    items = pd.DataFrame(
        {"item_id": ["a"], "title": ["Alien"], "text": [" In space. "], "categories": [[]],
         "year": pd.array([None], "Int64")}
    )  # fmt: skip
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "rating": [1.0], "timestamp": [0]})
    assert Catalogue(items, inter).item_text(0) == "Alien. In space."


def test_item_at_matches_the_items_frame(cat: Catalogue) -> None:
    """The array-backed item_at gives what the items frame holds, for every item."""
    for pos in range(len(cat)):
        row = cat.items.iloc[pos]
        item = cat.item_at(pos)
        year = row["year"]
        assert (item.item_id, item.title) == (row["item_id"], row["title"])
        assert item.text == (row["text"] or "")
        assert item.categories == list(row["categories"]) and item.tags == list(row["tags"])
        assert item.year == (None if pd.isna(year) else int(year))
    with pytest.raises(IndexError):
        cat.item_at(len(cat))


def test_user_records_and_liked_are_cached_copies(cat: Catalogue) -> None:
    records = cat.user_records("1")
    assert records == cat.user_history("1").to_dict("records") and len(records) == 272
    records[0]["item_id"] = "changed"
    records.append({})
    assert cat.user_records("1") == cat.user_history("1").to_dict("records")
    liked = cat.user_liked_ids("1")
    assert liked == cat.liked_ids(cat.user_history("1")) and liked
    liked.clear()
    assert cat.user_liked_ids("1")
    assert cat.user_records("nobody") == [] and cat.user_liked_ids("nobody") == []


def test_user_liked_ids_match_the_per_user_rule_for_play_counts() -> None:
    """The one-pass liked mask equals the rule applied to each user's own history
    (top-share ranks are per user; tied counts keep row order)."""
    from recpilot.data.meta import LikedRule

    rng = np.random.default_rng(1)
    items = pd.DataFrame({
        "item_id": [str(i) for i in range(40)], "title": [f"T{i}" for i in range(40)],
        "text": "", "categories": [[] for _ in range(40)], "year": pd.array([None] * 40, "Int64"),
    })  # fmt: skip
    rows = [(f"u{u}", str(i), float(rng.integers(1, 4)), t)
            for t, (u, i) in enumerate((u, i) for u in range(12) for i in rng.choice(40, 7, False))]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    cat = Catalogue(items, inter, LikedRule.parse("top-share:0.5"))
    for user in inter["user_id"].unique():
        expected = cat.liked_ids(cat.user_history(user))
        assert cat.user_liked_ids(user) == expected and 1 <= len(expected) <= 4
