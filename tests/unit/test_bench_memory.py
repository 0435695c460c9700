"""The memory benchmark's loop, and the bounded LLM call records it is about."""

import json

from fakes import fake_llm

from recpilot.evals.bench_memory import measure, rss_mib
from recpilot.llm.calls import in_node, recording
from recpilot.llm.client import CALLS_KEPT

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_measure_reads_rss_at_each_checkpoint(tiny_settings):
    settings = tiny_settings.model_copy(update={"api_keys": ["m"], "planner": "rules"})
    out = measure(settings, use_llm=False, checkpoints=[4, 8], warmup=2, body={"k": 3}, seed=0)
    assert [p["requests"] for p in out["points"]] == [4, 8] and out["errors"] == 0
    assert out["baseline_mib"] > 0 and all(p["rss_mib"] > 0 for p in out["points"])
    assert 0 < rss_mib()


def test_calls_are_recorded_per_run_and_the_client_keeps_only_a_few():
    n = CALLS_KEPT + 10
    client = fake_llm(*[json.dumps({"a": i}) for i in range(n)])
    with recording() as first:
        with in_node("plan"):
            client.json([{"role": "user", "content": "x"}], SCHEMA, "plan", 5)
    with recording() as second:
        for _ in range(n - 1):
            client.json([{"role": "user", "content": "x"}], SCHEMA, "other", 5)
    assert [c.purpose for c in first.by_node("plan")] == ["plan"] and len(first) == 1
    assert len(second) == n - 1 and second.by_node("plan") == []
    assert len(client.calls) == CALLS_KEPT  # bounded, however long the process runs
