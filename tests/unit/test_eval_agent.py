"""eval-agent: the shipped labelled set, argument matching and end checks."""

import pytest

from recpilot.agent.tools import tool_names
from recpilot.data.catalogue import Catalogue
from recpilot.evals.agent.run import TurnScore, load_set, markdown, summarise
from recpilot.evals.agent.scoring import arg_matches, end_checks, named_in_labels


@pytest.fixture(scope="module")
def catalogue(tiny_settings):
    return Catalogue.load(tiny_settings.dataset_dir)


def test_the_shipped_set_covers_every_tool_with_120_turns():
    convs = load_set()
    turns = [t for c in convs for t in c["turns"]]
    assert len(turns) >= 120
    used = {name for t in turns for name in t["tools"]}
    assert used == set(tool_names())
    for t in turns:
        for key in t.get("args", {}):
            assert key.split(".")[0] in t["tools"], (t["say"], key)


def test_arguments_match_by_meaning(catalogue):
    shown = ["9", "10", "19"]
    chosen = {"recommend": {"include_categories": ["comedy", "Romance"], "like_titles": ["#1"]},
              "profile": {}}  # fmt: skip
    assert arg_matches("recommend.include_categories", ["Comedy"], chosen, shown, catalogue)
    assert arg_matches("recommend.like_titles", ["Groundhog Day"], chosen, shown, catalogue)
    assert not arg_matches("recommend.k", 3, chosen, shown, catalogue)
    assert arg_matches("profile.action", "show", chosen, shown, catalogue)  # the default
    assert not arg_matches("compare.items", ["#1", "#2"], chosen, shown, catalogue)


def test_end_checks_find_broken_constraints_and_named_items(catalogue):
    named = named_in_labels({"absent": ["Toy Story (1995)"]}, catalogue, [])
    assert named == {"1"}
    items = [{"item_id": "1"}, {"item_id": "4"}]
    checks = end_checks({"k": 2, "exclude": ["Horror"], "year_min": 1990}, items, catalogue,
                        named, [])  # fmt: skip
    assert checks == {"no_invented_ids": True, "named_absent": False, "k": True,
                      "exclude": False, "year_min": True}  # fmt: skip
    turns = [TurnScore(conversation="c", turn=0, controller="rules", message="m",
                       expected_tools=["recommend"], chosen_tools=["recommend"], source="rules",
                       tool_ok=True, args_ok=1, args_total=2, checks=checks, items=["1", "4"],
                       ms=100.0, llm_calls=0, fallbacks=0)]  # fmt: skip
    summary = summarise(turns)["rules"]
    assert summary["tool_accuracy"] == 1.0 and summary["arg_accuracy"] == 0.5
    assert summary["named_back"] == 1 and summary["end_checks"] == 0.6
    assert "| rules (no LLM) | 1 | 1.000 | 0.500 | 0.600 |" in markdown(summarise(turns), "m")
