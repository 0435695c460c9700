"""Soft and hard, positive and negative preferences: parsed by rules, applied in recall and
coarse ranking (RecBot's split)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recpilot.agent.intent_rules import parse_constraints
from recpilot.data.catalogue import Catalogue, Constraints
from recpilot.data.preferences import apply_mode, preference_scores, read_titles
from recpilot.funnel.coarse_rank import coarse_rank
from recpilot.funnel.recall.base import RecallRequest, RecallResources
from recpilot.funnel.recall.popularity import PopularityChannel


@pytest.fixture(scope="module")
def catalogue(tiny_settings) -> Catalogue:
    return Catalogue.load(tiny_settings.dataset_dir)


@pytest.mark.parametrize(
    ("message", "prefer", "include", "disfavor", "exclude"),
    [
        ("I mostly enjoy Drama and Thriller.", ["Drama", "Thriller"], [], [], []),
        ("I love comedies", ["Comedy"], [], [], []),
        ("only dramas please", [], ["Drama"], [], []),
        ("I like dramas, but only dramas", [], ["Drama"], [], []),
        ("a comedy for my kids", [], ["Comedy", "Children's"], [], []),
        ("not a big fan of musicals", [], [], ["Musical"], []),
        ("mostly comedies, no horror", ["Comedy"], [], [], ["Horror"]),
        ("less horror, more comedy", [], ["Comedy"], ["Horror"], []),
        ("nothing but comedies", [], ["Comedy"], [], []),
    ],
)
def test_rules_split_soft_and_hard(catalogue, message, prefer, include, disfavor, exclude):
    c = parse_constraints(message, catalogue)
    assert c.prefer_categories == prefer
    assert c.include_categories == include
    assert c.disfavor_categories == disfavor
    assert c.exclude_categories == exclude


def test_soft_preferences_do_not_filter_but_hard_mode_does(catalogue):
    soft = parse_constraints("I mostly enjoy Horror", catalogue)
    assert catalogue.allowed_mask(soft).all()
    hard = apply_mode(soft, "hard")
    assert hard.include_categories == ["Horror"] and not hard.has_preferences()
    assert catalogue.allowed_mask(hard).sum() == 3  # Scream, The Shining, Alien
    assert apply_mode(soft, "soft") == soft


def test_preference_scores_share_of_preferred_minus_disfavoured(catalogue):
    c = Constraints(prefer_categories=["Crime", "Thriller"], disfavor_categories=["Comedy"])
    score = preference_scores(catalogue, c)
    at = {i: float(score[catalogue.index_of[i]]) for i in ("11", "12", "19", "7")}
    assert at == {"11": 1.0, "12": 0.5, "19": -1.0, "7": 0.0}  # Fargo, Pulp, Doubtfire, SW
    assert preference_scores(catalogue, Constraints(exclude_categories=["Horror"])) is None


def test_popularity_recall_ranks_preferred_items_first_without_dropping_others(
    catalogue, tiny_settings
):
    channel = PopularityChannel(RecallResources(catalogue, None, None, None))  # type: ignore[arg-type]
    mask = np.ones(len(catalogue.ids), dtype=bool)
    plain = [h.item_id for h in channel.retrieve(RecallRequest(allowed=mask, seen=set()), mask)]
    pref = preference_scores(catalogue, Constraints(prefer_categories=["Horror"]))
    req = RecallRequest(allowed=mask, seen=set(), preference=pref)
    boosted = [h.item_id for h in channel.retrieve(req, mask)]
    assert sorted(boosted) == sorted(plain)  # a prior, not a filter
    horror = {"4", "5", "6"}
    assert set(boosted[:3]) == horror and set(plain[:3]) != horror


def test_coarse_rank_adds_the_preference_with_its_weight(catalogue, tiny_settings):
    ids = ["1", "5"]  # Toy Story (popular) vs The Shining (less so)
    base = coarse_rank(ids, catalogue, None, None, keep=2)  # type: ignore[arg-type]
    assert [i for i, _ in base] == ["1", "5"]
    pref = np.array([-0.5, 1.0], dtype=np.float32)
    ranked = coarse_rank(ids, catalogue, None, None, keep=2, preference=pref,  # type: ignore[arg-type]
                         preference_weight=1.0)  # fmt: skip
    assert [i for i, _ in ranked] == ["5", "1"]
    assert dict(ranked)["5"] == pytest.approx(dict(base)["5"] + 1.0)


@pytest.fixture(scope="module")
def films() -> Catalogue:
    titles = [("1", "Star Wars", 1977), ("2", "Empire Strikes Back, The", 1980),
              ("3", "Batman", 1989), ("4", "Batman Returns", 1992), ("5", "Batman Forever", 1995),
              ("6", "Fargo", 1996), ("7", "Heat", 1995)]  # fmt: skip
    items = pd.DataFrame(titles, columns=["item_id", "title", "year"])
    items["text"] = ""
    items["categories"] = [["Sci-Fi", "War"], ["Sci-Fi", "War"], ["Action"], ["Action"],
                           ["Action"], ["Crime"], ["Crime"]]  # fmt: skip
    inter = pd.DataFrame([("u1", "1"), ("u2", "3")], columns=["user_id", "item_id"])
    return Catalogue(items.assign(), inter.assign(rating=5.0, timestamp=0))


def test_hated_titles_exclude_their_franchise_and_liked_ones_seed(films):
    r = read_titles(films, "I loved Fargo but I hate Batman.")
    assert r.liked == ["6"]
    assert r.avoided == ["3", "4", "5"] and r.avoided_titles == ["Batman"]
    assert "Fargo" not in r.rest and "Batman" not in r.rest


@pytest.mark.parametrize(
    "message",
    ["no Batman please", "nothing with Batman", "anything except Batman",
     "I'd rather not watch Batman", "no more Batman", "no superhero films like Batman",
     "I hate action movies such as Batman"],
)
def test_every_negation_phrasing_avoids_the_title(films, message):
    r = read_titles(films, message)
    assert r.liked == [] and r.avoided == ["3", "4", "5"] and r.avoided_titles == ["Batman"]


def test_a_title_given_as_an_example_of_a_wanted_kind_stays_liked(films):
    for message in ("crime films like Fargo", "no, I want something like Fargo"):
        r = read_titles(films, message)
        assert r.liked == ["6"] and r.avoided == [], message


def test_a_negated_franchise_name_that_is_no_title_avoids_the_franchise(films):
    r = read_titles(films, "no more Star Trek, something with Heat")
    assert r.avoided_titles == []  # no "Star Trek…" title in this catalogue: nothing to avoid
    r = read_titles(films, "no more Star, something with Heat")
    assert r.avoided == ["1"] and r.avoided_titles == ["Star"] and "Star" not in r.rest
    assert r.liked_titles == ["Heat"]


def test_text_similarity_extends_an_avoided_title_to_sequels_under_other_names(films):
    vectors = np.eye(7, dtype=np.float32)
    vectors[1] = vectors[0]  # The Empire Strikes Back reads like Star Wars
    r = read_titles(films, "please avoid Star Wars", item_vectors=vectors)
    assert r.avoided == ["1", "2"]


def test_a_named_title_is_not_read_as_a_category(films):
    r = read_titles(films, "I loved Star Wars")
    assert parse_constraints(r.rest, films).is_empty()
    assert r.liked == ["1"]


def test_the_llm_cannot_turn_a_soft_preference_into_a_filter():
    from recpilot.agent.nodes.understand import combine

    rules = Constraints(prefer_categories=["Drama"], exclude_items=["7"])
    llm = {"include_categories": ["Drama", "Comedy"], "exclude_categories": [],
           "year_min": 0, "year_max": 0}  # fmt: skip
    out = combine(rules, llm)
    assert out.include_categories == ["Comedy"]  # only what the rules did not read as soft
    assert out.prefer_categories == ["Drama"] and out.exclude_items == ["7"]


def test_understand_reads_named_and_hated_titles_without_an_llm(tiny_settings):
    from recpilot.agent.graph import build_graph, turn_input
    from recpilot.agent.services import build_services

    svc = build_services(tiny_settings, None)
    message = "I loved Fargo and I mostly enjoy Crime, but I hate Alien"
    state = build_graph().invoke(turn_input(None, message, 5), context=svc)
    assert state["intent"].liked_items == ["11"]
    assert "6" in state["thread_constraints"].exclude_items
    assert state["thread_constraints"].prefer_categories == ["Crime"]
    shown = [i.item_id for i in state["items"]]
    assert "6" not in shown and "11" not in shown
    notes = {s["stage"]: s["note"] for s in state["stages"]}
    assert "titles named: 11" in notes["understand"] and "avoided: Alien" in notes["understand"]
    assert "soft preferences: +Crime" in notes["recall"]
    # the understand step's own reading (the fixed workflow), switched off
    off = build_services(
        tiny_settings.model_copy(update={"named_titles": False, "controller": "pipeline"}), None
    )
    state = build_graph().invoke(turn_input(None, message, 5), context=off)
    assert state["intent"].liked_items == []
