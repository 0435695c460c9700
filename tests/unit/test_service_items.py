"""Grounded item texts over HTTP, without an LLM: the errors a client gets before any LLM
call (unknown item, no LLM, bad body). With the real model: tests/integration/
test_content_embedded.py."""

import httpx
import pytest

from recpilot.service.background import serve_in_thread as running_service

KEY = "items-key-1"


@pytest.fixture(scope="module")
def client(tiny_settings):
    settings = tiny_settings.model_copy(update={"api_keys": [KEY]})
    with running_service(settings, use_llm=False) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c:
            yield c


def test_unknown_item_is_404_before_the_llm(client):
    for path in ("/v1/items/nope/describe", "/v1/items/nope/promote"):
        r = client.post(path, json={"audience": "kids"})
        assert r.status_code == 404, r.text
        assert "unknown item id 'nope'" in r.json()["error"]


def test_known_item_without_an_llm_is_503_with_json(client):
    r = client.post("/v1/items/1/describe")
    assert r.status_code == 503 and "without an LLM" in r.json()["error"]
    r = client.post("/v1/items/1/promote", json={"audience": "families"})
    assert r.status_code == 503


def test_bad_bodies_are_422_and_a_missing_key_401(client):
    assert client.post("/v1/items/1/promote", json={"audience": ""}).status_code == 422
    assert client.post("/v1/items/1/describe", json={"attempts": 9}).status_code == 422
    assert httpx.post(f"{client.base_url}/v1/items/1/describe").status_code == 401


def test_soft_preferences_pass_through_the_api_and_show_in_the_trace(client):
    body = {"k": 5, "constraints": {"prefer_categories": ["scary"]}}
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["constraints"]["prefer_categories"] == ["Horror"]
    trace = client.get(f"/v1/traces/{out['run_id']}").json()
    notes = {n["node"]: n["note"] for n in trace["nodes"]}
    assert "soft preferences: +Horror" in notes["coarse"]
    assert len(out["items"]) == 5  # a boost, not a filter: the 3 horror films + 2 others
    assert {"4", "5", "6"} <= {i["item_id"] for i in out["items"]}
    bad = client.post("/v1/recommend", json={"constraints": {"prefer_categories": ["Nope"]}})
    assert bad.status_code == 400
