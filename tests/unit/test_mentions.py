"""Titles named in a message, found by the catalogue without an LLM."""

from __future__ import annotations

import pandas as pd
import pytest

from recpilot.data.catalogue import Catalogue
from recpilot.data.mentions import find_mentions, title_index


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    titles = [("1", "Fargo", 1996), ("2", "Usual Suspects, The", 1995), ("3", "Heat", 1995),
              ("4", "Titanic", 1953), ("5", "Titanic", 1997), ("6", "Star Wars", 1977),
              ("7", "Star Trek: Generations", 1994), ("8", "Star Trek: First Contact", 1996),
              ("9", "Alien", 1979), ("10", "Aliens", 1986), ("11", "Alien 3", 1992),
              ("12", "City of Lost Children, The (Cité des enfants perdus, La)", 1995)]  # fmt: skip
    items = pd.DataFrame(titles, columns=["item_id", "title", "year"])
    items["text"], items["categories"] = "", [["Drama"]] * len(items)
    rows = [("u1", "5"), ("u2", "5"), ("u3", "4"), ("u1", "1")]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(rating=5.0, timestamp=0)
    return Catalogue(items, inter)


def ids(catalogue, text):
    return [m.item_id for m in find_mentions(catalogue, text)]


def test_titles_with_years_articles_and_lower_case_are_found(catalogue):
    text = "I loved Fargo (1996), the usual suspects and star wars."
    found = find_mentions(catalogue, text)
    assert [m.item_id for m in found] == ["1", "2", "6"]
    assert text[found[0].start : found[0].end] == "Fargo (1996)"
    assert text[found[1].start : found[1].end] == "the usual suspects"


def test_a_year_picks_the_remake_and_popularity_breaks_the_tie(catalogue):
    assert ids(catalogue, "I liked Titanic (1953)") == ["4"]
    assert ids(catalogue, "I liked Titanic") == ["5"]  # the more popular one


def test_ordinary_words_are_not_titles(catalogue):
    assert ids(catalogue, "heat is fine, I like alien worlds") == []
    assert ids(catalogue, "Heat waves bore me") == []  # a sentence's first word
    assert ids(catalogue, "I liked Heat and Aliens") == ["3", "10"]
    assert ids(catalogue, "something like the 90s") == []


def test_alternative_titles_and_accents(catalogue):
    assert ids(catalogue, "I adored La Cite des Enfants Perdus") == ["12"]
    assert ids(catalogue, "and The City of Lost Children") == ["12"]


def test_a_franchise_is_every_title_that_starts_with_it(catalogue):
    index = title_index(catalogue)
    assert sorted(index.franchise("Star Trek")) == ["7", "8"]
    assert sorted(index.franchise("alien")) == ["11", "9"]  # not "Aliens"
    assert index.franchise("a") == []


def test_titles_with_inner_punctuation_are_found():
    """A full stop inside a title ("Mrs.", "vs.") folds to a double space in the
    catalogue's form; the message's words must still meet it."""
    titles = [("1", "Mrs. Doubtfire", 1993), ("2", "People vs. Larry Flynt, The", 1996),
              ("3", "Dr. Strangelove or: How I Learned to Stop Worrying", 1963)]  # fmt: skip
    items = pd.DataFrame(titles, columns=["item_id", "title", "year"])
    items["text"], items["categories"] = "", [["Comedy"]] * len(items)
    inter = pd.DataFrame([("u1", "1")], columns=["user_id", "item_id"]).assign(
        rating=5.0, timestamp=0)  # fmt: skip
    cat = Catalogue(items, inter)
    assert ids(cat, "I loved Mrs. Doubtfire (1993) and The People vs. Larry Flynt") == ["1", "2"]
    assert ids(cat, "I loved Mrs Doubtfire and People vs Larry Flynt, The (1996)") == ["1", "2"]
    assert title_index(cat).franchise("Mrs. Doubtfire") == ["1"]
