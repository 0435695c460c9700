"""Stage contracts: a new recall channel is one class; turn state and context per turn."""

import json
from types import SimpleNamespace

import numpy as np
from fakes import fake_llm
from langgraph.checkpoint.memory import InMemorySaver

from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.nodes.plan import channels_prompt, plan_schema
from recpilot.agent.nodes.respond import respond
from recpilot.agent.services import build_services
from recpilot.agent.state import Code, Intent, TurnScratch, scratch_reset
from recpilot.data.catalogue import Catalogue
from recpilot.evals.harness import default_pipelines
from recpilot.evals.pipelines import run_graph
from recpilot.funnel.recall import Hit, RecallChannel, channel_names, registered


class NewestChannel(RecallChannel):
    """A channel defined only here: the most recent releases, newest first."""

    name = "newest"
    description = "the most recent releases"

    @classmethod
    def usable(cls, signals):
        return True

    def retrieve(self, req, mask):
        cat = self.res.catalogue
        years = cat.items["year"].fillna(0).to_numpy()
        order = [int(p) for p in np.argsort(-years, kind="stable") if mask[p]]
        return [Hit(str(cat.ids[p]), float(years[p])) for p in order[: req.per_channel]]

    @classmethod
    def reason(cls, cand, catalogue, query):
        return f"one of the newest releases ({catalogue.get(cand['item_id']).year})"


def test_a_registered_channel_is_planned_recalled_explained_and_evaluated(tiny_settings):
    svc = build_services(tiny_settings, None)
    graph = build_graph()
    with registered(NewestChannel):
        # planned: by the rules, and offered to the LLM planner (schema enum + prompt)
        state = graph.invoke(turn_input("u1", k=3, fine_mode="off"), context=svc)
        assert "newest" in state["plan"].channels and state["plan"].source == "rules"
        assert "newest" in plan_schema()["properties"]["channels"]["items"]["enum"]
        assert "newest (the most recent releases)" in channels_prompt()
        llm = fake_llm(json.dumps({"channels": ["newest"], "per_channel": 20}))
        by_llm = graph.invoke(
            turn_input("u1", k=3, fine_mode="off"), context=build_services(tiny_settings, llm)
        )
        assert by_llm["plan"].source == "llm" and by_llm["plan"].channels[0] == "newest"
        recall_note = next(s["note"] for s in state["stages"] if s["stage"] == "recall")
        assert "newest=" in recall_note

        # recalled and explained: alone, every item comes from it and says so
        alone = graph.invoke(
            turn_input("u1", k=3, fine_mode="off", channels=["newest"]), context=svc
        )
        years = [i.year for i in alone["items"]]
        assert years and all(i.sources == ["newest"] for i in alone["items"])
        assert all(i.reason.startswith(f"One of the newest releases ({i.year})")
                   for i in alone["items"])  # fmt: skip

        # evaluated: the offline evaluation measures it alone, like the built-in channels
        pipeline = next(p for p in default_pipelines("hybrid", [], False)
                        if p.name == "recall:newest")  # fmt: skip
        rec = run_graph(graph, svc, "u1", pipeline, 5, hidden=[])
        cat = svc.catalogue
        ranked_years = [cat.get(i).year or 0 for i in rec.ranked]
        assert rec.ranked and ranked_years == sorted(ranked_years, reverse=True)
    assert "newest" not in channel_names()  # unregistered again


def test_turn_input_resets_every_scratch_field():
    inputs = turn_input("u1")
    assert set(TurnScratch.__annotations__) <= set(inputs)
    assert set(scratch_reset()) == set(TurnScratch.__annotations__)


def test_no_per_turn_field_leaks_into_the_next_turn(tiny_settings):
    llm_controller = tiny_settings.model_copy(update={"controller": "llm"})
    svc = build_services(llm_controller, fake_llm())  # every LLM call fails: fallbacks
    graph = build_graph(InMemorySaver())
    cfg = {"configurable": {"thread_id": "leak"}}
    first = graph.invoke(turn_input("u1", "a comedy", k=2, fine_mode="off"), cfg, context=svc)
    second = graph.invoke(turn_input("u1", None, k=2, fine_mode="off"), cfg, context=svc)
    assert [f.split(":")[0] for f in first["fallbacks"]] == ["controller"]  # then the rules
    assert [f.split(":")[0] for f in second["fallbacks"]] == ["plan"]  # no message this time
    assert [s["stage"] for s in second["stages"]].count("understand") == 1
    assert second["previous"].item_ids == [i.item_id for i in second["items"]]
    assert first["tool_calls"] and not second["tool_calls"] and second["funnel"] is None


def test_stage_records_carry_reason_codes(tiny_settings):
    llm = fake_llm("not json", "{}")
    pipeline = tiny_settings.model_copy(update={"controller": "pipeline"})  # LLM understand
    state = build_graph().invoke(
        turn_input("u1", "a comedy", k=2, fine_mode="off"),
        context=build_services(pipeline, llm),
    )
    codes = {s["stage"]: s["codes"] for s in state["stages"]}
    assert Code.LLM_FAILED in codes["understand"] and Code.RULES_ONLY in codes["understand"]
    assert Code.LLM_FAILED in codes["plan"] and Code.PATH_WARM in codes["plan"]
    assert Code.SCORED_BY_MODEL in codes["coarse"] and Code.QUERY_SIMILARITY in codes["coarse"]
    reads = {s["stage"]: s["reads"] for s in state["stages"]}
    assert "thread_constraints" in reads["recall"] and "candidates" in reads["coarse"]


def test_the_turn_context_is_built_once_per_turn(tiny_settings):
    svc = build_services(tiny_settings, None)
    calls = {"encode": 0, "user_vector": 0}
    encode, user_vector = svc.encoder.encode, svc.recall_model.user_vector

    def counting_encode(texts):
        calls["encode"] += 1
        return encode(texts)

    def counting_user_vector(*args, **kwargs):
        calls["user_vector"] += 1
        return user_vector(*args, **kwargs)

    svc.encoder.encode = counting_encode
    svc.recall_model.user_vector = counting_user_vector
    try:
        state = build_graph().invoke(
            turn_input("u5", "something exciting", k=2, fine_mode="off"), context=svc
        )
    finally:
        del svc.encoder.encode, svc.recall_model.user_vector
    assert state["items"]
    assert calls == {"encode": 1, "user_vector": 1}


def test_respond_node_with_stub_services(tiny_settings):
    catalogue = Catalogue.load(tiny_settings.dataset_dir)
    stub = SimpleNamespace(catalogue=catalogue)
    state = {
        "k": 2,
        "intent": Intent(query="kids"),
        "candidates": [
            {"item_id": "3", "sources": {"i2i": 0.9}, "seed_item": "1", "coarse": 0.8,
             "final": 0.8},
            {"item_id": "5", "sources": {"popularity": 3.0}, "coarse": 0.2, "final": 0.2},
            {"item_id": "7", "sources": {"popularity": 2.0}, "coarse": 0.1, "final": 0.1},
        ],
    }  # fmt: skip
    out = respond(state, SimpleNamespace(context=stub, store=None))
    first, second = out["items"]
    assert first.reason.startswith("Similar to Toy Story, which you liked")
    assert second.reason.startswith("Popular: ") and second.sources == ["popularity"]
    assert out["shown"] == ["3", "5"] and out["previous"].item_ids == ["3", "5"]
    assert [s["stage"] for s in out["stages"]] == ["respond"]


class _Knows:
    """A stub scorer that knows exactly the given users."""

    def __init__(self, *users):
        self.users = set(users)

    def knows(self, user_id):
        return user_id in self.users


def test_plan_node_with_stub_services(settings):
    from recpilot.agent.nodes.plan import plan

    stub = SimpleNamespace(settings=settings, coarse_model=_Knows("alice"), llm=None)
    runtime = SimpleNamespace(context=stub, store=None)
    warm = plan({"user_id": "alice", "intent": Intent(), "k": 5}, runtime)
    cold = plan({"user_id": "bob", "intent": Intent(query="space opera"), "k": 5}, runtime)
    assert warm["plan"].path == "warm" and cold["plan"].path == "cold"
    assert warm["plan"].channels == ["i2i", "collaborative", "popularity"]
    assert cold["plan"].channels == ["semantic", "popularity"]
    assert warm["plan"].fine_mode == "off"  # no LLM
    assert Code.PATH_COLD in cold["stages"][0]["codes"] and warm["fallbacks"] == []
