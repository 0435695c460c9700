"""Admin keys and user keys bound to one user id (real uvicorn, no LLM)."""

import httpx
import openai
import pytest

from recpilot.service.background import serve_in_thread

ADMIN = "admin-key-xyz"
U1_KEY = "user-key-u1"
U2_KEY = "user-key-u2"


@pytest.fixture(scope="module")
def service(tiny_settings, tmp_path_factory):
    home = tmp_path_factory.mktemp("keys-home")
    import shutil

    shutil.copytree(tiny_settings.home, home, dirs_exist_ok=True)
    settings = tiny_settings.model_copy(
        update={"home": home, "api_keys": [ADMIN], "user_api_keys": {U1_KEY: "u1", U2_KEY: "u2"}}
    )
    with serve_in_thread(settings, use_llm=False) as url:
        yield url


def client(url, key):
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_a_user_key_acts_only_as_its_user(service):
    with client(service, U1_KEY) as u1:
        own = u1.post("/v1/recommend", json={"k": 2})  # no user_id: the key's user
        assert own.status_code == 200, own.text
        assert own.json()["user_id"] == "u1"
        assert u1.post("/v1/recommend", json={"user_id": "u1", "k": 2}).status_code == 200
        other = u1.post("/v1/recommend", json={"user_id": "u2", "k": 2})
        assert other.status_code == 403 and "scoped to user 'u1'" in other.json()["error"]
        assert u1.get("/v1/profiles/u1").status_code == 200
        assert u1.get("/v1/profiles/u2").status_code == 403
        assert u1.delete("/v1/profiles/u2").status_code == 403
        fb = {"user_id": "u2", "item_id": "3", "kind": "like"}
        assert u1.post("/v1/feedback", json=fb).status_code == 403
        assert u1.post("/v1/feedback", json={**fb, "user_id": "u1"}).status_code == 201
        mine = u1.post("/v1/feedback", json={"item_id": "4", "kind": "like"})  # the key's user
        assert mine.status_code == 201 and mine.json()["user_id"] == "u1"
        with u1.stream("POST", "/v1/chat", json={"thread_id": "k-t2", "user_id": "u2",
                                                  "message": "hi"}) as r:
            assert r.status_code == 403


def test_traces_are_scoped_to_the_user(service):
    with client(service, U2_KEY) as u2, client(service, U1_KEY) as u1:
        run2 = u2.post("/v1/recommend", json={"k": 2}).json()["run_id"]
        run1 = u1.post("/v1/recommend", json={"k": 2}).json()["run_id"]
        listed = u1.get("/v1/traces", params={"limit": 100}).json()
        assert listed and {t["user_id"] for t in listed} == {"u1"}
        assert u1.get("/v1/traces", params={"user_id": "u2"}).status_code == 403
        assert u1.get(f"/v1/traces/{run1}").status_code == 200
        other = u1.get(f"/v1/traces/{run2}")  # as if it did not exist: no owner leaked
        assert other.status_code == 404 and "u2" not in other.text
    with client(service, ADMIN) as admin:
        users = {t["user_id"] for t in admin.get("/v1/traces", params={"limit": 100}).json()}
        assert {"u1", "u2"} <= users
        assert admin.get(f"/v1/traces/{run2}").status_code == 200


def test_a_user_key_cannot_continue_another_users_thread(service):
    with client(service, ADMIN) as admin:
        with admin.stream("POST", "/v1/chat", json={"thread_id": "k-t1", "user_id": "u2",
                                                     "message": "comedies"}) as r:
            assert r.status_code == 200 and r.read()
    with client(service, U1_KEY) as u1:
        # the thread is u2's: continuing it as u1 is refused (the key may act as u1 only)
        r = u1.post("/v1/chat/completions", json={
            "model": "recpilot", "thread_id": "k-t1",
            "messages": [{"role": "user", "content": "more"}]})
        assert r.status_code == 403 and "another user" in r.json()["error"]
        # the SSE endpoint refuses it too, before any stream starts (JSON, not an event)
        r = u1.post("/v1/chat", json={"thread_id": "k-t1", "message": "more"})
        assert r.status_code == 403 and "another user" in r.json()["error"]
        assert r.headers["content-type"].startswith("application/json")
        # the owner continues it
    with client(service, U2_KEY) as u2:
        with u2.stream("POST", "/v1/chat", json={"thread_id": "k-t1", "message": "more"}) as r:
            assert r.status_code == 200 and "event: result" in r.read().decode()


def test_the_openai_endpoint_works_with_a_user_key(service):
    oa = openai.OpenAI(base_url=f"{service}/v1", api_key=U1_KEY)
    out = oa.chat.completions.create(
        model="recpilot", messages=[{"role": "user", "content": "something funny"}]
    )
    assert out.choices[0].message.content and out.model_extra["recpilot"]["items"]
    with pytest.raises(openai.PermissionDeniedError):
        oa.chat.completions.create(
            model="recpilot", user="u2", messages=[{"role": "user", "content": "hi"}]
        )


def test_admin_keys_reach_every_user_and_unknown_keys_are_401(service):
    with client(service, ADMIN) as admin:
        assert admin.get("/v1/profiles/u2").status_code == 200
        assert admin.post("/v1/recommend", json={"user_id": "u3", "k": 1}).status_code == 200
        nobody = admin.post("/v1/feedback", json={"item_id": "4", "kind": "like"})
        assert nobody.status_code == 422 and "user_id is required" in nobody.text
    with client(service, "nope") as bad:
        assert bad.get("/v1/profiles/u1").status_code == 401


def test_the_web_page_is_served_without_a_key(service):
    r = httpx.get(f"{service}/web/")
    assert r.status_code == 200 and "<html" in r.text.lower()
