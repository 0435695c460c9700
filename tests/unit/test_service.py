"""The HTTP service without an LLM: real uvicorn on 127.0.0.1, real HTTP clients, tiny data.

The LLM-backed paths (fine ranking, the openai package against /v1/chat/completions with
the real model) are in tests/integration/test_service_llm.py.
"""

import json

import httpx
import openai
import pytest
from httpx_sse import EventSource

from recpilot.service.background import serve_in_thread as running_service

KEY = "test-key-123"


@pytest.fixture(scope="module")
def service(tiny_settings):
    settings = tiny_settings.model_copy(update={"api_keys": [KEY], "max_request_bytes": 4096})
    with running_service(settings, use_llm=False) as url:
        yield url


@pytest.fixture
def client(service):
    with httpx.Client(base_url=service, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def sse(response: httpx.Response) -> list[tuple[str, dict]]:
    """The stream's ``(event, data)`` pairs, parsed by httpx-sse."""
    return [(e.event, json.loads(e.data)) for e in EventSource(response).iter_sse()]


def test_recommend_returns_items_stages_and_a_stored_trace(client):
    r = client.post(
        "/v1/recommend",
        json={"user_id": "u1", "k": 3, "constraints": {"exclude_categories": ["scary"]}},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 3 and body["constraints"]["exclude_categories"] == ["Horror"]
    assert body["stages_ran"] == ["understand", "plan", "recall", "coarse", "respond", "remember"]
    trace = client.get(f"/v1/traces/{body['run_id']}").json()
    assert [n["node"] for n in trace["nodes"]] == body["stages_ran"]
    assert [i["item_id"] for i in trace["items"]] == [i["item_id"] for i in body["items"]]
    listed = client.get("/v1/traces", params={"user_id": "u1", "limit": 5}).json()
    assert body["run_id"] in [t["run_id"] for t in listed]


def test_without_a_valid_key_every_api_call_is_401(service):
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "nope"},
        {"X-API-Key": "k\u00e9y".encode()},  # non-ASCII: still a 401, not a 500
    ):
        r = httpx.post(f"{service}/v1/recommend", json={"k": 2}, headers=headers)
        assert r.status_code == 401 and "API key" in r.json()["error"]
    assert httpx.get(f"{service}/v1/traces").status_code == 401
    assert httpx.get(f"{service}/v1/profiles/u1").status_code == 401
    ok = httpx.post(f"{service}/v1/recommend", json={"k": 2}, headers={"X-API-Key": KEY})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("{not json", 422, "invalid request"),
        ({"k": 0}, 422, "k"),
        ({"k": "ten"}, 422, "k"),
        ({"user_id": "u1", "colour": "red"}, 422, "colour"),
        ({"constraints": {"include_categories": ["Nope"]}}, 400, "unknown category 'Nope'"),
        ({"constraints": {"year_min": 2000, "year_max": 1990}}, 400, "year_min 2000"),
        ({"message": "x" * 5000}, 413, "larger than 4096 bytes"),
    ],
)
def test_malformed_bodies_get_a_json_4xx(client, body, status, says):
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    r = client.post("/v1/recommend", headers={"Content-Type": "application/json"}, **kwargs)
    assert r.status_code == status, r.text
    assert says in r.json()["error"] and "Traceback" not in r.text


def test_chat_streams_node_events_then_the_result_and_keeps_the_thread(client):
    first = None
    for turn, message in enumerate(["no horror please", "more like that"]):
        body = {"thread_id": "svc-t1", "user_id": "u5", "message": message, "k": 2}
        with client.stream("POST", "/v1/chat", json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            events = sse(r)
        names = [e for e, _ in events]
        assert names[-1] == "result" and set(names[:-1]) == {"node"}
        nodes = [d["node"] for e, d in events if e == "node"]
        assert nodes == ["controller", "act", "understand", "plan", "recall", "coarse", "respond",
                         "remember"]  # fmt: skip
        assert all(d["ms"] >= 0 and d["end_ms"] >= d["start_ms"] for e, d in events if e == "node")
        result = events[-1][1]
        assert result["thread_id"] == "svc-t1" and result["constraints"]["exclude_categories"] == [
            "Horror"
        ]
        if turn == 0:
            first = {i["item_id"] for i in result["items"]}
        else:
            assert not first & {i["item_id"] for i in result["items"]}
    threads = client.get("/v1/traces", params={"thread_id": "svc-t1"}).json()
    assert [t["message"] for t in threads] == ["more like that", "no horror please"]


def test_chat_error_is_an_sse_error_event(client):
    nope = {"include_categories": ["Nope"]}
    body = {"thread_id": "svc-bad", "message": "hi", "constraints": nope}
    with client.stream("POST", "/v1/chat", json=body) as r:
        events = sse(r)
    assert events == [("error", {"error": events[0][1]["error"]})]
    assert "unknown category" in events[0][1]["error"]


def test_feedback_and_profile_get_delete(client):
    r = client.post("/v1/feedback", json={"user_id": "u2", "item_id": "4", "kind": "dislike"})
    assert r.status_code == 201, r.text
    r = client.post("/v1/feedback", json={"user_id": "u2", "item_id": "9", "kind": "rating",
                                          "rating": 5})  # fmt: skip
    assert r.status_code == 201
    assert client.post("/v1/feedback", json={"user_id": "u2", "item_id": "nope",
                                             "kind": "like"}).status_code == 422  # fmt: skip
    bad = client.post("/v1/feedback", json={"user_id": "u2", "item_id": "9", "kind": "rating"})
    assert bad.status_code == 422 and "rating" in bad.json()["error"]
    profile = client.get("/v1/profiles/u2").json()
    assert profile["known"] and profile["history_count"] == 6
    assert {h["item_id"] for h in profile["recent_history"]} == {"1", "2", "9", "10", "15", "18"}
    assert [(f["item_id"], f["kind"]) for f in profile["feedback"]] == [
        ("9", "rating"),
        ("4", "dislike"),
    ]
    assert profile["top_categories"][0][0] in {"Comedy", "Children's", "Romance"}
    # the like/dislike reached the long-term profile the graph reads
    assert profile["long_term"]["liked"] == ["9"] and profile["long_term"]["disliked"] == ["4"]
    deleted = client.delete("/v1/profiles/u2").json()
    assert deleted["deleted_feedback"] == 2 and deleted["deleted_long_term"] is True
    after = client.get("/v1/profiles/u2").json()
    assert after["feedback"] == [] and after["long_term"] is None
    assert client.get("/v1/profiles/stranger").status_code == 404
    # feedback alone makes a profile for a user outside the dataset
    client.post("/v1/feedback", json={"user_id": "newbie", "item_id": "1", "kind": "like"})
    assert client.get("/v1/profiles/newbie").json()["known"] is False


def test_traces_404_health_ready_docs_and_web_page(client, service):
    r = client.get("/v1/traces/run-missing")
    assert r.status_code == 404 and "no trace" in r.json()["error"]
    ready = httpx.get(f"{service}/v1/ready").json()
    assert ready == {
        "ready": True,
        "checks": {
            "llm": "off",
            "chroma": "ok",
            "traces": "ok",
            "feedback": "ok",
            "checkpoints": "ok",
        },
        "llm_queue": None,  # no LLM: no limiter
    }
    spec = httpx.get(f"{service}/openapi.json").json()
    for path in (
        "/v1/recommend",
        "/v1/chat",
        "/v1/profiles/{user_id}",
        "/v1/feedback",
        "/v1/traces",
        "/v1/traces/{run_id}",
        "/v1/chat/completions",
    ):
        assert path in spec["paths"]
    assert httpx.get(f"{service}/docs").status_code == 200
    page = httpx.get(f"{service}/", follow_redirects=True)
    assert page.status_code == 200 and "app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no external assets


def test_openai_client_talks_to_chat_completions(service):
    oa = openai.OpenAI(base_url=f"{service}/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in oa.models.list()] == ["recpilot"]
    messages = [{"role": "user", "content": "something exciting"}]
    done = oa.chat.completions.create(
        model="recpilot", messages=messages, user="u6", extra_body={"k": 3}
    )
    text = done.choices[0].message.content
    extra = done.model_extra["recpilot"]
    assert len(extra["items"]) == 3 and all(i["title"] in text for i in extra["items"])
    messages += [{"role": "assistant", "content": text}, {"role": "user", "content": "more"}]
    stream = oa.chat.completions.create(model="recpilot", messages=messages, user="u6",
                                        stream=True, extra_body={"k": 3})  # fmt: skip
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "1. " in streamed
    second = client_trace_ids(service, extra["thread_id"])
    assert len(second) == 2  # both turns ran in the same thread
    with pytest.raises(openai.UnprocessableEntityError) as bad:
        oa.chat.completions.create(model="recpilot", messages=messages, user="no spaces allowed")
    assert "user_id" in bad.value.response.json()["error"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{service}/v1", api_key="bad", max_retries=0).models.list()


def client_trace_ids(service: str, thread_id: str) -> list[str]:
    r = httpx.get(f"{service}/v1/traces", params={"thread_id": thread_id},
                  headers={"X-API-Key": KEY})  # fmt: skip
    return [t["run_id"] for t in r.json()]


def test_oversized_chunked_body_without_content_length_is_refused(client):
    def chunks():
        yield b'{"message": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/v1/recommend", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413 and "larger than 4096 bytes" in r.json()["error"]


def test_user_ids_with_dots_work_end_to_end_and_can_be_forgotten(client):
    user = "john.doe"
    assert client.post("/v1/recommend", json={"user_id": user, "k": 2}).status_code == 200
    fb = {"user_id": user, "item_id": "1", "kind": "like"}
    assert client.post("/v1/feedback", json=fb).status_code == 201
    assert client.get(f"/v1/profiles/{user}").json()["long_term"]["liked"] == ["1"]
    gone = client.delete(f"/v1/profiles/{user}").json()
    assert gone["deleted_long_term"] is True and gone["deleted_feedback"] == 1
    assert gone["deleted_traces"] >= 1
    assert client.get(f"/v1/profiles/{user}").status_code == 404


def test_trace_prefix_with_like_wildcards_matches_nothing(client):
    client.post("/v1/recommend", json={"k": 2})
    for prefix in ("______", "%%%%%%"):
        assert client.get(f"/v1/traces/{prefix}").status_code == 404


def test_only_busy_locked_or_io_sqlite_errors_count_as_a_store_outage(tmp_path):
    import sqlite3

    from recpilot.service.app import sqlite_transient

    path = tmp_path / "x.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError) as missing:
        holder.execute("SELECT * FROM no_such_table")
    holder.execute("ROLLBACK")
    holder.close()
    other.close()
    assert sqlite_transient(locked.value)  # 503 + Retry-After
    assert not sqlite_transient(missing.value)  # a 500: a bug or a damaged file


def test_readiness_checks_run_at_once_so_a_dead_backend_costs_one_timeout():
    """Chroma, the trace store and the feedback store each wait for the other two (a
    barrier): checked one after another, the first would time out and be an error."""
    import threading
    from types import SimpleNamespace

    from recpilot.service.app import readiness

    barrier = threading.Barrier(3, timeout=10)

    def meet() -> int:
        barrier.wait()
        return 5

    services = SimpleNamespace(llm=None, index=SimpleNamespace(count=meet))
    engine = SimpleNamespace(
        rec=SimpleNamespace(services=services, checkpointer=None),
        traces=SimpleNamespace(ping=meet),
        feedback=SimpleNamespace(ping=meet),
    )
    result = readiness(engine)  # type: ignore[arg-type]
    assert result.checks["chroma"] == result.checks["traces"] == result.checks["feedback"] == "ok"
    assert result.checks["llm"] == "off" and result.checks["checkpoints"].startswith("error")
    assert not result.ready
