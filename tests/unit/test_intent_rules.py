import pytest

from recpilot.agent.intent_rules import parse_constraints
from recpilot.data.catalogue import Catalogue


@pytest.fixture(scope="module")
def catalogue(tiny_settings):
    return Catalogue.load(tiny_settings.dataset_dir)


@pytest.mark.parametrize(
    ("message", "exclude", "years"),
    [
        ("no horror, only from the 1990s", ["Horror"], (1990, 1999)),
        ("something lighter, from the 90s, no horror", ["Horror"], (1990, 1999)),
        ("Nothing scary please, nineties stuff", ["Horror"], (1990, 1999)),
        ("without horror or thrillers", ["Horror", "Thriller"], (None, None)),
        ("a film from the '80s", [], (1980, 1989)),
        ("between 1993 and 1990", [], (1990, 1993)),
        ("anything before 1980", [], (None, 1979)),
        ("after 2000 please", [], (2001, None)),
        ("nothing after 1980", [], (None, 1980)),
        ("nothing before 1990", [], (1990, None)),
        ("no movies older than 1990", [], (1990, None)),
        ("no horror, before 1990 please", ["Horror"], (None, 1989)),
        ("no horror, no comedy", ["Horror", "Comedy"], (None, None)),
    ],
)
def test_constraints_from_message(catalogue, message, exclude, years):
    c = parse_constraints(message, catalogue)
    assert c.exclude_categories == exclude
    assert (c.year_min, c.year_max) == years


def test_wanted_categories_are_not_the_excluded_ones(catalogue):
    c = parse_constraints("a comedy for my kids, no horror", catalogue)
    assert set(c.include_categories) == {"Comedy", "Children's"}
    assert c.exclude_categories == ["Horror"]


def test_plain_request_has_no_constraints(catalogue):
    assert parse_constraints("more like that", catalogue).is_empty()
    assert parse_constraints("I loved Toy Story", catalogue).is_empty()


@pytest.mark.parametrize(
    ("message", "query"),
    [
        ("something lighter, from the 90s, no horror", "something lighter"),
        ("no horror, only from the 1990s", ""),
        ("more like that", "more like that"),
        ("a heist movie made after 2000", "a heist movie made"),
        # soft negatives leave the query too, and a negation stops at its comma
        ("not a big fan of musicals, something fun", "something fun"),
        ("no horror, something fun", "something fun"),
        ("no horror, no comedy, a thriller", "a thriller"),
    ],
)
def test_strip_constraints_leaves_the_query(message, query):
    from recpilot.agent.intent_rules import strip_constraints

    assert strip_constraints(message) == query


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("more like that", True),
        ("More like those, please", True),
        ("another one", True),
        ("similar ones", True),
        ("more comedies", False),
        ("something lighter", False),
    ],
)
def test_follow_up(query, expected):
    from recpilot.agent.intent_rules import is_follow_up

    assert is_follow_up(query) is expected
