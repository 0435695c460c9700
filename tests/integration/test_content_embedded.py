"""describe, promote and enrich against the real embedded model, on ML-100K."""

from __future__ import annotations

import pytest

from recpilot.config.settings import Settings
from recpilot.content import enrich as job
from recpilot.content.facts import check_facts, item_facts
from recpilot.content.grounded import generate_grounded
from recpilot.data.catalogue import Catalogue
from recpilot.llm.client import LLMClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(embedded_settings: Settings, embedded_llm: str) -> LLMClient:
    return LLMClient.from_settings(embedded_settings, embedded_llm, embedded=True)


@pytest.fixture(scope="module")
def catalogue(ml100k_home) -> Catalogue:
    return Catalogue.load(ml100k_home / "datasets" / "movielens-100k")


@pytest.mark.parametrize(("item_id", "kind"), [("50", "description"), ("1", "promotion")])
def test_the_model_writes_a_text_that_passes_the_fact_check(client, catalogue, item_id, kind):
    facts = item_facts(catalogue, item_id, "movie")
    result = generate_grounded(client, catalogue, facts, kind, audience="families")
    assert result.attempts >= 1 and result.tokens > 0
    if result.ok:  # whatever passed is re-checked here, independently of the loop
        assert check_facts(result.text, facts, catalogue) == []
        assert len(result.text.split()) >= 5
    else:  # dropped: every attempt's problems are reported
        assert len(result.problems) == result.attempts


def test_an_invented_fact_in_a_real_answer_is_caught(client, catalogue):
    """The model is told a wrong year; the check must catch it in what it writes."""
    facts = item_facts(catalogue, "50", "movie").model_copy(update={"year": 1990})
    result = generate_grounded(client, catalogue, facts, "description", attempts=1)
    real = item_facts(catalogue, "50", "movie")
    text = result.text or (result.rejected[0] if result.rejected else "")
    assert "1990" in text, text  # the model states the year it was given (temperature 0)
    assert any("year 1990 is not the movie's year (1977)" in p
               for p in check_facts(text, real, catalogue))  # fmt: skip


def test_enrich_writes_resumes_and_feeds_the_item_text(client, catalogue, tmp_path):
    catalogue.items.to_parquet(tmp_path / "items.parquet")
    catalogue.interactions.to_parquet(tmp_path / "interactions.parquet")
    report = job.enrich_items(client, catalogue, tmp_path, noun="movie", limit=2)
    assert report.done == 2 and report.tokens > 0 and report.items_per_hour > 0
    again = job.enrich_items(client, catalogue, tmp_path, noun="movie", limit=2)
    assert (again.done, again.cached) == (0, 2)
    if report.failed < 2:
        assert job.activate(tmp_path, client.model_name) == 2 - report.failed
        enriched = Catalogue.load(tmp_path)
        pos = next(p for p in range(len(enriched)) if enriched.item_at(p).description)
        assert "About: " in enriched.item_text(pos)
