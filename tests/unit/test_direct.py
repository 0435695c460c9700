"""The direct funnel (no Pregel loop) gives what the compiled graph gives for one-off,
message-less requests: the same items, reply, candidates, stages and trace."""

import json

import pytest
from fakes import fake_llm
from langgraph.store.memory import InMemoryStore

from recpilot.agent.direct import DirectFunnel
from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.runner import Recommender
from recpilot.agent.services import build_services
from recpilot.data.catalogue import Constraints
from recpilot.stores.traces.recorder import TraceRecorder

PLAN = {"channels": ["collaborative", "i2i", "popularity"], "per_channel": 50}

REQUESTS = [
    {"user_id": "u9", "k": 5},
    {"user_id": None, "k": 3},
    {"user_id": "u2", "k": 4, "constraints": Constraints(exclude_categories=["Horror"])},
    {"user_id": "u3", "k": 2, "constraints": Constraints(year_min=1990, year_max=1999)},
    {"user_id": "u4", "k": 6, "channels": ["popularity"]},
]


def comparable(state: dict) -> dict:
    """The parts of a final state that must match (stage durations differ run to run)."""
    stages = [{k: v for k, v in s.items() if k != "ms"} for s in state["stages"]]
    return {
        "items": [i.model_dump() for i in state["items"]],
        "reply": state["reply"],
        "candidates": state["candidates"],
        "stages": stages,
        "plan": state["plan"],
        "intent": state["intent"],
        "fallbacks": state["fallbacks"],
        "dropped_ids": state["dropped_ids"],
        "shown": state.get("shown"),
        "llm_down": state["llm_down"],
    }


@pytest.mark.parametrize("request_", REQUESTS)
def test_direct_funnel_matches_the_graph_without_llm(tiny_settings, request_):
    services = build_services(tiny_settings, None)
    store = InMemoryStore()
    states = []
    for runner in (build_graph(store=store), DirectFunnel(store=store)):
        inputs = turn_input(**request_)  # a new turn id: the per-turn context is not shared
        inputs["shown"] = ["1"]  # what an evaluation hides
        states.append(runner.invoke(inputs, context=services))
    by_graph, by_direct = states
    assert comparable(by_direct) == comparable(by_graph)
    assert "1" not in [i.item_id for i in by_direct["items"]]


def test_direct_funnel_matches_the_graph_with_llm_plan_and_fine(tiny_settings):
    states = []
    for runner in (build_graph(), DirectFunnel()):
        llm = fake_llm(json.dumps(PLAN), json.dumps({"ranking": ["9", "10"]}))
        services = build_services(tiny_settings, llm)
        inputs = turn_input("u9", None, 5, fine_mode="listwise")
        states.append(runner.invoke(inputs, context=services))
        assert [c.purpose for c in llm.calls] == ["plan", "fine_listwise"]
    by_graph, by_direct = states
    assert [s["stage"] for s in by_direct["stages"]][-3:] == ["coarse", "fine", "respond"]
    assert comparable(by_direct) == comparable(by_graph)


def test_direct_funnel_streams_the_graphs_chunks(tiny_settings):
    services = build_services(tiny_settings, None)
    traces = []
    for runner in (build_graph(), DirectFunnel()):
        inputs = turn_input("u5", None, 3)
        recorder = TraceRecorder("r", {"user_id": "u5", "k": 3}, None)
        for mode, chunk in runner.stream(  # called the same way on both
            inputs, config={}, context=services, stream_mode=["updates", "values"]
        ):
            recorder.feed(mode, chunk)
        trace = recorder.finish(None)
        traces.append([(n.node, sorted(n.inputs), sorted(n.outputs)) for n in trace.nodes])
        assert trace.items and trace.reply
    assert traces[0] == traces[1]
    updates = list(DirectFunnel().stream(turn_input("u5", None, 3), context=services))
    assert [next(iter(u)) for u in updates][0] == "understand"


def test_direct_funnel_refuses_a_message_and_an_unknown_field(tiny_settings):
    services = build_services(tiny_settings, None)
    with pytest.raises(ValueError, match="message or a thread"):
        DirectFunnel().invoke(turn_input("u1", "a comedy", 3), context=services)
    thread = {"configurable": {"thread_id": "t"}}
    with pytest.raises(ValueError, match="message or a thread"):
        list(DirectFunnel().stream(turn_input("u1", None, 3), thread, context=services))
    with pytest.raises(ValueError, match="'nonsense', which is not a State field"):
        DirectFunnel().apply({}, {"nonsense": 1})


def test_recommender_runs_message_less_one_offs_directly(tiny_settings):
    with Recommender(tiny_settings, use_llm=False) as rec:
        used = []
        direct_stream = rec.direct.stream
        rec.direct.stream = lambda *a, **kw: used.append(1) or direct_stream(*a, **kw)
        one_off = rec.run("u1", None, 3)
        assert used == [1] and len(one_off.items) == 3
        assert one_off.stages_ran == ["understand", "plan", "recall", "coarse", "respond",
                                      "remember"]  # fmt: skip
        rec.run("u1", "a comedy", 3)  # a message: the controller graph
        rec.run("u1", None, 3, thread_id="direct-1")  # a thread: the checkpointed graph
        assert used == [1]
