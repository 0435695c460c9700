"""Concurrency of the service: the LLM limiter, keyed locks, no global run lock.

The LLM here is a stand-in OpenAI-compatible server process (``standin_llm.py``) that
answers after a fixed delay, one request at a time — enough to hold an LLM turn in
flight while LLM-off requests run; the real model is in the integration tests.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from standin_llm import start_standin, stats

from recpilot.llm.errors import LLMBusyError
from recpilot.llm.limiter import LLMLimiter
from recpilot.llm.server import free_port
from recpilot.service.background import serve_in_thread
from recpilot.stores.locks import KeyedLocks

KEY = "admin-key-1"
DELAY_S = 1.5


def test_limiter_bounds_in_flight_and_refuses_when_the_queue_is_full():
    limiter = LLMLimiter(max_in_flight=1, max_waiting=1, wait_timeout_s=5)
    entered = threading.Event()
    release = threading.Event()
    order = []

    def first():
        with limiter.slot():
            order.append("first")
            entered.set()
            release.wait(5)

    def second():
        with limiter.slot() as waited_ms:
            order.append(("second", waited_ms))

    t1 = threading.Thread(target=first)
    t1.start()
    entered.wait(5)
    t2 = threading.Thread(target=second)
    t2.start()
    deadline = time.monotonic() + 5
    while limiter.stats().waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert limiter.saturated()
    with pytest.raises(LLMBusyError) as busy, limiter.slot():
        pass
    assert busy.value.retry_after_s == limiter.retry_after_s and busy.value.unreachable
    time.sleep(0.1)
    release.set()
    t1.join(5)
    t2.join(5)
    assert order[0] == "first" and order[1][0] == "second" and order[1][1] >= 100
    s = limiter.stats()
    assert (s.admitted, s.refused, s.in_flight, s.waiting) == (2, 1, 0, 0)
    assert s.wait_max_ms >= 100


def test_limiter_serves_waiters_first_in_first_out_and_arrivals_do_not_overtake():
    limiter = LLMLimiter(max_in_flight=1, max_waiting=4, wait_timeout_s=5)
    order: list[str] = []

    def waiter(name: str) -> None:
        with limiter.slot():
            order.append(name)

    threads = []
    with limiter.slot():
        for i, name in enumerate(("a", "b", "c")):
            threads.append(threading.Thread(target=waiter, args=(name,)))
            threads[-1].start()
            deadline = time.monotonic() + 5
            while limiter.stats().waiting < i + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert limiter.stats().waiting == 3
    # the slot was just freed and "a" not yet woken: this arrival queues behind a, b, c
    waiter("late")
    for t in threads:
        t.join(5)
    assert order == ["a", "b", "c", "late"]
    assert limiter.stats().waiting == 0


def test_limiter_wait_times_out_with_a_busy_error():
    limiter = LLMLimiter(max_in_flight=1, max_waiting=3, wait_timeout_s=0.2)
    with limiter.slot():
        done = []

        def waiter():
            try:
                with limiter.slot():
                    done.append("ran")
            except LLMBusyError as err:
                done.append(str(err))

        t = threading.Thread(target=waiter)
        t.start()
        t.join(5)
    assert len(done) == 1 and "no slot within 0.2 s" in done[0]


def test_keyed_locks_serialise_one_key_and_not_others():
    locks = KeyedLocks()
    spans: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}

    def hold(key):
        with locks.hold(key):
            start = time.perf_counter()
            time.sleep(0.15)
            spans[key].append((start, time.perf_counter()))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(hold, ["a", "a", "b", "b"]))
    for key in "ab":
        (s1, e1), (s2, e2) = sorted(spans[key])
        assert s2 >= e1  # the same key: one after the other
    a_first, b_first = min(spans["a"]), min(spans["b"])
    assert b_first[0] < a_first[1]  # different keys overlapped
    assert locks.held() == 0  # entries are dropped when free


@pytest.fixture(scope="module")
def standin():
    port = free_port()
    proc = start_standin(port, DELAY_S)
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def llm_service(tiny_settings, standin):
    settings = tiny_settings.model_copy(
        update={
            "api_keys": [KEY],
            "llm_base_url": f"http://127.0.0.1:{standin}/v1",
            "llm_json_mode": "json_schema",
            "llm_max_in_flight": 1,
            "llm_max_waiting": 1,
            "planner": "rules",  # LLM-off requests: no message, fine_mode off, rules plan
            "llm_retries": 0,
            "llm_timeout_s": 30,
        }
    )
    with serve_in_thread(settings, use_llm=True) as url:
        yield url


def _client(url):
    return httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=60)


def _wait_llm_in_flight(client, n=1):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        q = client.get("/v1/ready").json()["llm_queue"]
        if q["in_flight"] >= n:
            return q
        time.sleep(0.02)
    raise AssertionError("no LLM call got in flight")


def test_llm_off_requests_do_not_wait_behind_an_llm_turn(llm_service):
    with _client(llm_service) as c:
        with ThreadPoolExecutor(1) as pool:
            turn = pool.submit(
                c.post, "/v1/recommend", json={"user_id": "u1", "message": "funny films", "k": 3}
            )
            _wait_llm_in_flight(c)
            off_ms = []
            for i in range(10):
                t0 = time.perf_counter()
                r = c.post(
                    "/v1/recommend", json={"user_id": f"u{i % 9 + 1}", "k": 3, "fine_mode": "off"}
                )
                off_ms.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and r.json()["llm"]["calls"] == 0
            assert not turn.done()  # all ten answered while the LLM turn was still running
            llm_turn = turn.result()
        assert llm_turn.status_code == 200 and llm_turn.json()["llm"]["calls"] >= 1
        assert max(off_ms) < DELAY_S * 1000


def test_a_full_llm_queue_is_a_503_with_retry_after_and_llm_off_still_answers(llm_service):
    body = {"user_id": "u2", "message": "something romantic", "k": 2}
    with _client(llm_service) as c, ThreadPoolExecutor(2) as pool:
        first = pool.submit(c.post, "/v1/recommend", json=body)
        _wait_llm_in_flight(c)
        second = pool.submit(c.post, "/v1/recommend", json=body)  # waits (queue of 1)
        deadline = time.monotonic() + 10
        while c.get("/v1/ready").json()["llm_queue"]["waiting"] < 1:
            assert time.monotonic() < deadline, "the second turn never queued"
            time.sleep(0.02)
        refused = c.post("/v1/recommend", json=body)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"].isdigit() and "busy" in refused.json()["error"]
        with c.stream("POST", "/v1/chat", json={**body, "thread_id": "busy-t"}) as r:
            assert r.status_code == 503
        ok = c.post("/v1/recommend", json={"user_id": "u2", "k": 2, "fine_mode": "off"})
        assert ok.status_code == 200
        assert first.result().status_code == 200 and second.result().status_code == 200


def test_two_turns_of_one_thread_never_interleave(llm_service):
    with _client(llm_service) as c, ThreadPoolExecutor(2) as pool:
        bodies = [
            {"thread_id": "same-t", "user_id": "u3", "message": m, "k": 2}
            for m in ("comedies please", "more like that")
        ]

        def chat(b):
            with c.stream("POST", "/v1/chat", json=b) as r:
                return r.status_code, r.read()

        futures = [pool.submit(chat, b) for b in bodies]
        assert all(f.result()[0] == 200 for f in futures), [f.result() for f in futures]
        runs = c.get("/v1/traces", params={"thread_id": "same-t"}).json()
    assert len(runs) == 2
    spans = []
    for run in runs:
        trace = httpx.get(
            f"{llm_service}/v1/traces/{run['run_id']}", headers={"X-API-Key": KEY}
        ).json()
        start = trace["nodes"][0]["start_ms"]
        spans.append((run["started_at"], start, run["total_ms"]))
    (a_at, _, a_ms), (b_at, _, _) = sorted(spans)
    from datetime import datetime

    gap_ms = (datetime.fromisoformat(b_at) - datetime.fromisoformat(a_at)).total_seconds() * 1000
    assert gap_ms >= a_ms - 50  # the later turn started after the earlier one ended


def test_concurrent_feedback_loses_no_row_and_no_profile_like(llm_service):
    with _client(llm_service) as c:
        before = len(c.get("/v1/profiles/u10").json()["feedback"])

        def like(item):
            return c.post("/v1/feedback", json={"user_id": "u10", "item_id": str(item),
                                                "kind": "like"}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(like, range(1, 17))) == {201}
        profile = c.get("/v1/profiles/u10").json()
    assert len(profile["feedback"]) == before + 16
    assert set(profile["long_term"]["liked"]) >= {str(i) for i in range(1, 17)}


def test_a_killed_llm_mid_request_falls_back_marked_and_recovers(tiny_settings):
    port = free_port()
    proc = start_standin(port, 2.0)
    settings = tiny_settings.model_copy(
        update={
            "api_keys": [KEY],
            "llm_base_url": f"http://127.0.0.1:{port}/v1",
            "llm_json_mode": "json_schema",
            "llm_retries": 0,
            "llm_timeout_s": 10,
        }
    )
    try:
        with serve_in_thread(settings, use_llm=True) as url, _client(url) as c:
            body = {"user_id": "u4", "message": "family films", "k": 3}
            with ThreadPoolExecutor(1) as pool:
                turn = pool.submit(c.post, "/v1/recommend", json=body)
                _wait_llm_in_flight(c)
                proc.kill()  # the LLM dies mid-request
                proc.wait()
                r = turn.result()
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["items"] and out["llm"]["failed"] >= 1 and out["fallbacks"]
            down = c.post("/v1/items/1/describe")  # the LLM is down: 503, not 500
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"].isdigit() and "LLM failed" in down.json()["error"]
            proc = start_standin(port, 0.0)  # back on the same port: no service restart
            r = c.post("/v1/recommend", json=body)
            assert r.status_code == 200 and r.json()["llm"]["calls"] >= 1
            assert stats(port)["finished"] >= 1
    finally:
        proc.kill()
        proc.wait()
