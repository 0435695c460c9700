import pytest

from recpilot.agent.runner import Recommender
from recpilot.data.catalogue import Constraints


def test_runner_turn_result_and_input_checks(tiny_settings):
    with Recommender(tiny_settings, use_llm=False) as rec:
        result = rec.run("u1", None, 3, Constraints(exclude_categories=["scary"]))
        assert result.constraints.exclude_categories == ["Horror"]
        assert len(result.items) == 3 and result.stages_ran[-2:] == ["respond", "remember"]
        assert result.llm.calls == 0 and not result.fine_fell_back
        with pytest.raises(ValueError, match="unknown category 'Nope'; known: .*Comedy"):
            rec.run("u1", None, 3, Constraints(include_categories=["Nope"]))
        both = Constraints(include_categories=["Horror"], exclude_categories=["scary"])
        with pytest.raises(ValueError, match="both included and excluded: Horror"):
            rec.run("u1", None, 3, both)
        with pytest.raises(ValueError, match="k must be"):
            rec.run("u1", None, 0)
        with pytest.raises(ValueError, match="fine mode"):
            rec.run("u1", None, 3, fine_mode="sideways")  # type: ignore[arg-type]


def test_thread_persists_in_sqlite_across_restarts(tiny_settings):
    with Recommender(tiny_settings, use_llm=False) as rec:
        first = rec.run("u5", "no horror", 3, thread_id="restart-1")
    with Recommender(tiny_settings, use_llm=False) as rec:
        second = rec.run("u5", "more like that", 3, thread_id="restart-1")
    assert second.constraints.exclude_categories == ["Horror"]
    assert not {i.item_id for i in first.items} & {i.item_id for i in second.items}


def test_a_thread_belongs_to_one_user(tiny_settings):
    with Recommender(tiny_settings, use_llm=False) as rec:
        rec.run("u8", "no horror", 3, thread_id="owned-1")
        with pytest.raises(ValueError, match="belongs to another user"):
            rec.run("u6", "more like that", 3, thread_id="owned-1")
        with pytest.raises(ValueError, match="belongs to another user"):
            rec.run(None, "more like that", 3, thread_id="owned-1")
        assert rec.run("u8", "more like that", 3, thread_id="owned-1").items


def test_contradictory_years_are_bad_input(tiny_settings):
    with Recommender(tiny_settings, use_llm=False) as rec:
        with pytest.raises(ValueError, match="year_min 2000 is after year_max 1990"):
            rec.run("u1", None, 3, Constraints(year_min=2000, year_max=1990))
