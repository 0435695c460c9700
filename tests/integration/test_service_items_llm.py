"""``POST /v1/items/{id}/describe`` and ``/promote`` with the real embedded model on ML-100K:
real uvicorn, httpx; what the service returns passes the fact-check again here."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from recpilot.config.settings import Settings
from recpilot.content.facts import check_facts, item_facts
from recpilot.data.catalogue import Catalogue
from recpilot.service.background import serve_in_thread as running_service

pytestmark = pytest.mark.integration
KEY = "items-integration-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def service(ml100k_home: Path, embedded_llm: str):
    settings = Settings(home=ml100k_home, llm_base_url=embedded_llm,
                        llm_json_mode="json_object_schema", api_keys=[KEY],
                        _env_file=None)  # fmt: skip
    with running_service(settings, use_llm=True) as url:
        yield url


@pytest.mark.parametrize(("path", "body"), [("/v1/items/50/describe", {}),
                                            ("/v1/items/1/promote", {"audience": "families"})])
def test_a_grounded_text_comes_back_fact_checked_or_a_422(service, ml100k_home, path, body):
    r = httpx.post(f"{service}{path}", json=body, headers=AUTH, timeout=180)
    item_id = path.split("/")[3]
    if r.status_code == 422:  # every attempt failed: the problems are named, no text shipped
        assert "failed the fact-check" in r.json()["error"]
        return
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["item_id"] == item_id and out["attempts"] >= 1 and out["tokens"] > 0
    catalogue = Catalogue.load(ml100k_home / "datasets" / "movielens-100k")
    assert check_facts(out["text"], item_facts(catalogue, item_id, "movie"), catalogue) == []


def test_unknown_item_is_404_without_an_llm_call(service):
    r = httpx.post(f"{service}/v1/items/999999/describe", headers=AUTH, timeout=30)
    # in the dataset's noun (ML-100K: movie)
    assert r.status_code == 404 and "unknown movie id '999999'" in r.json()["error"]
