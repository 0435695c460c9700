"""The controller's routing, parsing and fallbacks, with LangChain fake chat models."""

import json

import pytest
from fakes import fake_llm
from langgraph.checkpoint.memory import InMemorySaver

from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.services import build_services
from recpilot.data.catalogue import Catalogue

NO_INTENT = {"query": "", "include_categories": [], "exclude_categories": [], "year_min": 0,
             "year_max": 0, "liked_titles": []}  # fmt: skip
PLAN = {"channels": ["collaborative", "i2i", "popularity"], "per_channel": 50}


def run(tiny_settings, llm, **kwargs):
    services = build_services(tiny_settings, llm)
    state = build_graph().invoke(turn_input(**kwargs), context=services)
    return state, services


def stages(state):
    return [s["stage"] for s in state["stages"]]


def test_warm_user_full_funnel_with_listwise(tiny_settings):
    llm = fake_llm(json.dumps(PLAN), json.dumps({"ranking": ["9", "10"]}))
    state, svc = run(tiny_settings, llm, user_id="u9", k=5, fine_mode="listwise")
    assert stages(state) == ["understand", "plan", "recall", "coarse", "fine", "respond"]
    assert state["plan"].source == "llm" and state["plan"].path == "warm"
    ids = [i.item_id for i in state["items"]]
    assert len(ids) == 5 == len(set(ids))
    assert not {"1", "14", "2"} & set(ids)  # u9's own items
    fine = {c["item_id"]: c["fine"] for c in state["candidates"]}
    assert sorted(fine, key=fine.__getitem__, reverse=True)[:2] == ["9", "10"]
    assert not [s for s in state["stages"] if s["fell_back"]]
    assert all(i.reason for i in state["items"])
    assert [c.purpose for c in llm.calls] == ["plan", "fine_listwise"]


def test_llm_cannot_break_hard_constraints(tiny_settings):
    # the LLM "understands" the opposite of what was said; the rules win
    wrong = dict(NO_INTENT, include_categories=["Horror"], year_min=1970, year_max=1980)
    llm = fake_llm(json.dumps(wrong), json.dumps(PLAN), json.dumps({"ranking": ["4", "5"]}))
    state, svc = run(
        tiny_settings, llm, user_id="u7", message="no horror, only from the 1990s",
        fine_mode="listwise", k=5,
    )  # fmt: skip
    cons = state["thread_constraints"]
    assert cons.exclude_categories == ["Horror"] and "Horror" not in cons.include_categories
    assert (cons.year_min, cons.year_max) == (1990, 1999)
    assert state["items"]
    for item in state["items"]:
        assert "Horror" not in item.categories and 1990 <= item.year <= 1999
    assert set(state["dropped_ids"]) <= {"4", "5"}  # not candidates: dropped, recorded


def test_garbage_from_the_llm_falls_back_everywhere(tiny_settings):
    pipeline = tiny_settings.model_copy(update={"controller": "pipeline"})
    llm = fake_llm("not json", "{}", "[1, 2")
    state, _ = run(pipeline, llm, user_id="u1", message="a comedy", fine_mode="listwise", k=3)
    assert len(state["items"]) == 3
    fb = " ".join(state["fallbacks"])
    assert "understand" in fb and "plan" in fb and "fine" in fb
    fine = [s for s in state["stages"] if s["stage"] == "fine"][0]
    assert fine["fell_back"]
    assert state["intent"].source == "rules" and state["plan"].source == "rules"


def test_garbage_from_the_llm_controller_falls_back_to_the_rules(tiny_settings):
    llm = fake_llm("not json", "{}")
    settings = tiny_settings.model_copy(update={"controller": "llm"})
    state, _ = run(settings, llm, user_id="u1", message="a comedy", fine_mode="listwise", k=3)
    assert len(state["items"]) == 3 and all("Comedy" in i.categories for i in state["items"])
    assert [f.split(":")[0] for f in state["fallbacks"]] == ["controller", "fine"]
    assert state["controller"]["source"] == "rules" and state["plan"].source == "rules"
    assert [c.purpose for c in llm.calls] == ["controller", "fine_listwise"]


def test_no_llm_skips_fine_stage(tiny_settings):
    state, _ = run(tiny_settings, None, user_id="u1", k=4)
    assert stages(state) == ["understand", "plan", "recall", "coarse", "respond"]
    assert state["plan"].fine_mode == "off"
    assert len(state["items"]) == 4


def test_cold_user_named_items_drive_recall_and_are_not_recommended(tiny_settings):
    intent = dict(NO_INTENT, query="films for kids", include_categories=["Children's"],
                  liked_titles=["Toy Story", "Aladin"])  # fmt: skip
    llm = fake_llm(json.dumps(intent), json.dumps(PLAN | {"channels": ["i2i", "semantic"]}))
    state, svc = run(
        tiny_settings, llm, user_id=None,
        message="I loved Toy Story and Aladdin, something for my kids", fine_mode="off", k=3,
        sample_generation=False,
    )  # fmt: skip
    assert state["plan"].path == "cold"
    assert state["intent"].liked_items == ["1", "2"]
    ids = [i.item_id for i in state["items"]]
    assert ids and not {"1", "2"} & set(ids)
    cat = Catalogue.load(tiny_settings.dataset_dir)
    assert all("Children's" in cat.get(i).categories for i in ids)
    assert "popularity" in state["plan"].channels  # backstop added to the LLM's choice


def test_chat_thread_keeps_constraints_and_does_not_repeat(tiny_settings):
    services = build_services(tiny_settings, None)
    graph = build_graph(InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}
    first = graph.invoke(turn_input("u7", "no horror please", k=3), cfg, context=services)
    second = graph.invoke(turn_input("u7", "more like that", k=3), cfg, context=services)
    assert second["thread_constraints"].exclude_categories == ["Horror"]
    assert all("Horror" not in i.categories for i in second["items"])
    assert not {i.item_id for i in first["items"]} & {i.item_id for i in second["items"]}
    assert len(second["messages"]) == 4


@pytest.mark.parametrize("mode", ["off", "pointwise"])
def test_plan_fine_mode_routes(tiny_settings, mode):
    llm = fake_llm(json.dumps(PLAN))
    state, _ = run(tiny_settings, llm, user_id="u1", fine_mode=mode, k=2)
    assert ("fine" in stages(state)) == (mode != "off")


def test_fixed_channels_bypass_the_planner(tiny_settings):
    llm = fake_llm()  # no answers: any LLM call would fail and be recorded
    state, _ = run(tiny_settings, llm, user_id="u1", fine_mode="off", channels=["popularity"], k=3)
    assert state["plan"].channels == ["popularity"] and state["plan"].source == "request"
    assert not llm.calls
    assert all(c["sources"].keys() == {"popularity"} for c in state["candidates"])


def test_follow_up_reuses_the_previous_query_and_seeds_from_shown_items(tiny_settings):
    services = build_services(tiny_settings, None)
    graph = build_graph(InMemorySaver())
    cfg = {"configurable": {"thread_id": "t2"}}
    ask = turn_input(None, "animated films for children", k=2)
    first = graph.invoke(ask, cfg, context=services)
    second = graph.invoke(turn_input(None, "more like that", k=2), cfg, context=services)
    assert second["intent"].query == first["intent"].query == "animated films for children"
    assert [i.item_id for i in first["items"]] == second["intent"].liked_items[:2]
    assert "i2i" in second["plan"].channels
    assert not {i.item_id for i in first["items"]} & {i.item_id for i in second["items"]}
