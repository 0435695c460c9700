"""Run traces: recorded per node with LLM calls, stored in SQLite, shown by the CLI, exported."""

import json

import pytest
from fakes import fake_llm
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

from recpilot.agent.runner import Recommender
from recpilot.cli.main import app
from recpilot.stores.traces.export import export_otel
from recpilot.stores.traces.store import TraceNotFound, TraceStore

PLAN = {"channels": ["collaborative", "i2i", "popularity"], "per_channel": 50}
STAGES = ["understand", "plan", "recall", "coarse", "fine", "respond", "remember"]


@pytest.fixture
def traced_run(tiny_settings):
    """One warm listwise run whose LLM ranking names an id that is not a candidate."""
    with Recommender(tiny_settings, use_llm=False) as rec:
        rec.services.llm = fake_llm(json.dumps(PLAN), json.dumps({"ranking": ["9", "999"]}))
        result = rec.run("u9", None, 3, fine_mode="listwise")
    return result, TraceStore.in_home(tiny_settings.home).get(result.run_id)


def test_every_node_is_recorded_with_timing_candidates_and_llm_calls(traced_run):
    result, trace = traced_run
    assert [n.node for n in trace.nodes] == STAGES == result.stages_ran
    assert trace.user_id == "u9" and trace.thread_id is None
    for node, stage in zip(trace.nodes, result.stages, strict=True):
        assert node.ms == stage["ms"] and 0 <= node.start_ms <= node.end_ms <= trace.total_ms
    by = {n.node: n for n in trace.nodes}
    assert [c.purpose for c in by["plan"].llm_calls] == ["plan"]
    assert by["plan"].llm_calls[0].response == json.dumps(PLAN)
    assert "path: warm" in by["plan"].llm_calls[0].messages[-1]["content"]
    assert [c.purpose for c in by["fine"].llm_calls] == ["fine_listwise"]
    assert not by["recall"].llm_calls and by["understand"].candidates is None
    recall_ids = {c.item_id for c in by["recall"].candidates}
    assert {c.item_id for c in by["coarse"].candidates} <= recall_ids
    assert all(c.coarse is not None for c in by["coarse"].candidates)
    fine = by["fine"].candidates
    llm_scores = {c.item_id: c.fine for c in fine if c.fine is not None}
    assert llm_scores["9"] == max(llm_scores.values())
    assert [c.item_id for c in fine[:3]] == [i.item_id for i in result.items]
    assert by["recall"].inputs["plan"]["channels"] == PLAN["channels"]
    assert by["plan"].outputs["plan"]["source"] == "llm"
    assert "999" in trace.dropped_ids and "999" in by["fine"].note
    assert [i["item_id"] for i in trace.items] == [i.item_id for i in result.items]
    assert trace.llm_calls == 2


def test_store_lists_newest_first_and_finds_by_prefix(tiny_settings, traced_run):
    result, _ = traced_run
    with Recommender(tiny_settings, use_llm=False) as rec:
        second = rec.run("u5", "no horror", 2, thread_id="t-traces")
    store = TraceStore.in_home(tiny_settings.home)
    runs = store.list(limit=50)
    ids = [r.run_id for r in runs]
    assert ids.index(second.run_id) < ids.index(result.run_id)
    only = store.list(thread_id="t-traces")
    assert [r.run_id for r in only] == [second.run_id] and only[0].message == "no horror"
    assert store.get(second.run_id[:10]).run_id == second.run_id
    with pytest.raises(TraceNotFound, match="no trace with run id"):
        store.get("run-doesnotexist")


def test_store_keeps_only_the_newest_runs(tmp_path, traced_run):
    _, trace = traced_run
    store = TraceStore(tmp_path / "t.sqlite", keep=3)
    for i in range(5):
        store.save(trace.model_copy(update={"run_id": f"run-{i:012d}"}))
    assert store.prune() == 2
    assert [r.run_id for r in store.list(10)] == [f"run-{i:012d}" for i in (4, 3, 2)]


def test_a_failing_run_is_recorded_with_its_error(tiny_settings):
    with Recommender(tiny_settings, use_llm=False) as rec:
        with pytest.raises(ValueError, match="unknown recall channel"):
            rec.run("u1", None, 3, channels=["telepathy"])
    failed = [r for r in TraceStore.in_home(tiny_settings.home).list(100) if r.error]
    assert failed and "telepathy" in failed[0].error and failed[0].stages == ["understand"]


def test_trace_cli_list_show_json_and_unknown(tiny_settings, traced_run):
    result, _ = traced_run
    runner = CliRunner()
    home = ["--home", str(tiny_settings.home), "--dataset", "tiny"]
    out = runner.invoke(app, [*home, "trace", "list", "--json"])
    assert out.exit_code == 0, out.output
    assert result.run_id in {json.loads(line)["run_id"] for line in out.output.splitlines()}
    out = runner.invoke(app, [*home, "trace", "show", result.run_id], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    for stage in STAGES:
        assert stage in out.output
    assert "LLM fine#1 fine_listwise" in out.output and "dropped invalid ids: 999" in out.output
    out = runner.invoke(app, [*home, "trace", "show", result.run_id, "--json"])
    assert json.loads(out.output)["nodes"][4]["llm_calls"][0]["purpose"] == "fine_listwise"
    out = runner.invoke(app, [*home, "trace", "show", "run-nope"])
    assert out.exit_code == 1 and "error: no trace with run id 'run-nope'" in out.output


def test_otel_export_makes_a_span_per_node_and_llm_call(traced_run):
    _, trace = traced_run
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    export_otel(trace, provider.get_tracer("test"))
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = spans["recpilot.run"]
    assert root.attributes["recpilot.run_id"] == trace.run_id
    for stage in STAGES:
        span = spans[f"recpilot.node.{stage}"]
        assert span.parent.span_id == root.context.span_id
        assert span.start_time <= span.end_time
    llm = spans["llm.fine_listwise"]
    assert llm.parent.span_id == spans["recpilot.node.fine"].context.span_id
    assert "999" in llm.attributes["recpilot.llm.response"]
