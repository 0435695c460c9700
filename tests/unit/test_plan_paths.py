"""The plan step: warm/cold path with its reason in the trace; LLM budgets clamped."""

import json

from fakes import fake_llm

from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.services import build_services


def test_out_of_range_budget_is_clamped_not_thrown_away(tiny_settings):
    llm = fake_llm(json.dumps({"channels": ["collaborative", "popularity"], "per_channel": 10}))
    state = build_graph().invoke(turn_input("u1", None, k=3, fine_mode="off"),
                                 context=build_services(tiny_settings, llm))  # fmt: skip
    plan = state["plan"]
    assert plan.source == "llm" and plan.per_channel == 20
    note = next(s["note"] for s in state["stages"] if s["stage"] == "plan")
    assert "per_channel 10 clamped to 20" in note and not state["fallbacks"]


def test_trace_says_which_path_and_why(tiny_settings):
    services = build_services(tiny_settings, None)
    warm = build_graph().invoke(turn_input("u1", None, k=3), context=services)
    cold = build_graph().invoke(turn_input("nobody", "a comedy", k=3), context=services)
    anon = build_graph().invoke(turn_input(None, "a comedy", k=3), context=services)
    assert warm["plan"].path == "warm" and "u1 is in the training data" in warm["plan"].reason
    assert cold["plan"].path == "cold" and "nobody has no rating history" in cold["plan"].reason
    assert anon["plan"].path == "cold" and "no user id" in anon["plan"].reason
    notes = [next(s["note"] for s in st["stages"] if s["stage"] == "plan")
             for st in (warm, cold, anon)]  # fmt: skip
    assert notes[0].startswith("warm path") and notes[2].startswith("cold path")


def test_coarse_keep_honours_the_k_the_user_asked_for(tiny_settings):
    services = build_services(tiny_settings, None)
    asked = build_graph().invoke(turn_input(None, "give me 30 comedies", k=3), context=services)
    assert asked["intent"].k == 30 and asked["plan"].coarse_keep == 30
    plain = build_graph().invoke(turn_input(None, "comedies", k=3), context=services)
    assert plain["plan"].coarse_keep == tiny_settings.coarse_keep


def test_the_controller_may_choose_a_cheaper_fine_mode_never_a_dearer_one():
    from recpilot.agent.nodes.plan import fine_mode_for

    assert fine_mode_for(None, "pointwise", "listwise", llm=True) == "listwise"
    assert fine_mode_for(None, "listwise", "off", llm=True) == "off"
    assert fine_mode_for(None, "off", "listwise", llm=True) == "off"
    assert fine_mode_for(None, "pointwise", "pointwise", llm=True) == "pointwise"
    assert fine_mode_for("pointwise", "off", "listwise", llm=True) == "pointwise"  # caller's
    assert fine_mode_for("listwise", None, "listwise", llm=False) == "off"  # no LLM
