"""The HTTP service with the real embedded LLM on ml-100k: real uvicorn on 127.0.0.1, httpx,
the ``openai`` package, the ``recpilot serve`` command, and the web page in headless Chromium.

LLM-using requests are kept few (about five turns) to bound the run time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from httpx_sse import EventSource
from scale_servers import unavailable

from recpilot.config.settings import Settings
from recpilot.llm.server import free_port
from recpilot.service.background import serve_in_thread as running_service

pytestmark = pytest.mark.integration
KEY = "integration-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
FUNNEL = ["understand", "plan", "recall", "coarse", "fine", "respond", "remember"]
AGENT = ["controller", "act", *FUNNEL]  # a turn with a message: the controller chooses first
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def service(ml100k_home: Path, embedded_llm: str):
    settings = Settings(
        home=ml100k_home,
        llm_base_url=embedded_llm,
        llm_json_mode="json_object_schema",
        api_keys=[KEY],
        _env_file=None,
    )
    with running_service(settings, use_llm=True) as url:
        yield url


def sse(response: httpx.Response) -> list[tuple[str, dict]]:
    """The stream's ``(event, data)`` pairs, parsed by httpx-sse."""
    return [(e.event, json.loads(e.data)) for e in EventSource(response).iter_sse()]


def test_ready_checks_the_llm_chroma_and_stores(service):
    r = httpx.get(f"{service}/v1/ready", timeout=30)
    assert r.status_code == 200 and set(r.json()["checks"].values()) == {"ok"}


def test_recommend_with_llm_fine_ranking_and_its_trace(service):
    r = httpx.post(f"{service}/v1/recommend", json={"user_id": "196", "k": 5}, headers=AUTH,
                   timeout=300)  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stages_ran"] == FUNNEL and len(body["items"]) == 5
    trace = httpx.get(f"{service}/v1/traces/{body['run_id']}", headers=AUTH).json()
    calls = [c for n in trace["nodes"] for c in n["llm_calls"]]
    assert len(calls) == body["llm"]["calls"] >= 1
    assert all(c["latency_ms"] > 0 and c["messages"] for c in calls)
    # a failed call (e.g. a timeout on a busy machine) has no tokens but says why, and the
    # run records the fallback it took
    assert all(c["prompt_tokens"] > 0 for c in calls if c["error"] is None)
    failed = [c for c in calls if c["error"]]
    assert not failed or trace["fallbacks"]
    fine = next(n for n in trace["nodes"] if n["node"] == "fine")
    assert fine["llm_calls"] or fine["fell_back"]
    assert {c["item_id"] for c in fine["candidates"]} >= {i["item_id"] for i in body["items"]}


def test_streamed_multi_turn_chat_with_the_llm(service):
    shown: set[str] = set()
    for message in ["a funny animated movie for kids", "more like that but from the 1990s"]:
        body = {"thread_id": "it-chat-1", "user_id": "196", "message": message, "k": 5}
        with httpx.stream("POST", f"{service}/v1/chat", json=body, headers=AUTH,
                          timeout=300) as r:  # fmt: skip
            assert r.status_code == 200
            events = sse(r)
        assert [d["node"] for e, d in events if e == "node"][:4] == AGENT[:4]
        assert events[-1][0] == "result", events[-1]
        result = events[-1][1]
        ids = {i["item_id"] for i in result["items"]}
        assert len(ids) == 5 and not ids & shown  # a thread never repeats an item
        shown |= ids
    assert result["constraints"]["year_min"] == 1990 and result["constraints"]["year_max"] == 1999


def test_openai_package_against_chat_completions(service):
    oa = openai.OpenAI(base_url=f"{service}/v1", api_key=KEY, max_retries=0, timeout=300)
    done = oa.chat.completions.create(
        model="recpilot",
        messages=[{"role": "user", "content": "a classic science fiction film"}],
        user="196",
        extra_body={"k": 3},
    )
    items = done.model_extra["recpilot"]["items"]
    assert len(items) == 3
    assert all(i["title"] in done.choices[0].message.content for i in items)
    wrong = openai.OpenAI(base_url=f"{service}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(
            model="recpilot", messages=[{"role": "user", "content": "hi"}]
        )


def test_web_page_in_headless_chromium(service, tmp_path):
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} missing: apt-get install -y chromium (.ci/run does this)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        outside: list[str] = []
        page.on("request", lambda req: outside.append(req.url)
                if not req.url.startswith(service) else None)  # fmt: skip
        page.goto(f"{service}/#key={KEY}")
        page.fill("#user", "196")
        page.fill("#message", "a funny animated movie for kids")
        page.click("#send")
        items = page.locator("#items li.item")
        expect(items.first).to_be_visible(timeout=300_000)
        assert items.count() == 5
        expect(page.locator("#run-id")).to_contain_text("run-", timeout=30_000)
        stages = page.locator("#timeline .stage")
        assert stages.evaluate_all("rows => rows.map(r => r.dataset.node)") == AGENT
        expect(page.locator("#tool-calls li").first).to_contain_text("recommend(")
        for row in stages.all():
            assert row.locator(".ms").inner_text().endswith(("ms", " s"))
        page.locator('#timeline .stage[data-node="fine"]').click()
        detail = page.locator('#timeline .stage[data-node="fine"] + .stage-detail')
        expect(detail.locator("table.candidates")).to_be_visible()
        llm_call = detail.locator("details.llm-call").first
        if llm_call.count():
            llm_call.locator("summary").click()
            expect(llm_call.locator("pre").first).to_be_visible()
        shot = tmp_path / "web-page.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("RECPILOT_DOCS_SCREENSHOT"):
            shutil.copy(shot, os.environ["RECPILOT_DOCS_SCREENSHOT"])
        browser.close()
    assert shot.stat().st_size > 10_000 and not outside


def test_recpilot_serve_command_without_llm(ml100k_home):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPILOT_")}
    env["RECPILOT_HOME"] = str(ml100k_home)
    cmd = [sys.executable, "-m", "recpilot.cli", "serve", "--no-llm", "--port", str(port),
           "--api-key", KEY]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(f"{url}/v1/recommend", json={"user_id": "196", "k": 3}, headers=AUTH)
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        assert httpx.post(f"{url}/v1/recommend", json={"k": 3}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
