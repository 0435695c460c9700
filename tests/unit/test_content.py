"""Content understanding: the fact-check, grounded describe/promote, the enrichment job."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from recpilot.cli.main import app
from recpilot.content import enrich as job
from recpilot.content.facts import check_facts, item_facts
from recpilot.content.grounded import generate_grounded
from recpilot.data.catalogue import Catalogue
from tests.unit.fakes import fake_llm


@pytest.fixture
def catalogue() -> Catalogue:
    items = pd.DataFrame({
        "item_id": ["1", "2", "3"],
        "title": ["Fargo", "Toy Story", "Heat"],
        "text": ["A crime film by Joel Coen set in Minnesota.", "", ""],
        "categories": [["Crime", "Drama", "Thriller"], ["Animation", "Comedy"], ["Action"]],
        "year": [1996, 1995, None],
    })  # fmt: skip
    rows = [("u1", "1", 5), ("u2", "1", 4), ("u3", "1", 2), ("u4", "1", 5),
            ("u1", "2", 3), ("u2", "3", 1)]  # fmt: skip
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    inter["timestamp"] = range(len(inter))
    return Catalogue(items, inter)


def test_item_facts_come_from_the_row_and_the_ratings(catalogue):
    facts = item_facts(catalogue, "1", "movie")
    assert (facts.title, facts.year, facts.n_ratings) == ("Fargo", 1996, 4)
    assert facts.mean_rating == pytest.approx(4.0)
    assert facts.liked_share == pytest.approx(0.75)  # 3 of 4 ratings are 4+ of 5
    assert facts.scale_max == 5.0
    assert "Ratings: 4 users, mean 4.00 out of 5, 75% liked it" in facts.lines()
    with pytest.raises(ValueError, match="unknown item id 'nope'"):
        item_facts(catalogue, "nope")


def test_a_faithful_text_passes_the_fact_check(catalogue):
    facts = item_facts(catalogue, "1", "movie")
    text = ("Fargo is a 1996 crime drama and thriller by Joel Coen, set in Minnesota. "
            "Rated 4.0 out of 5 by 4 users, 75% of whom liked it; a 90s classic.")  # fmt: skip
    assert check_facts(text, facts, catalogue) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Fargo, released in 1994, is a thriller.", "year 1994"),
        ("A gem of the 1980s.", "decade 1980s"),
        ("A gem of the '80s.", "decade '80s"),
        ("Fargo is a clever comedy.", "category 'Comedy'"),
        ("Loved by 1,200 viewers.", "number 1,200"),
        ("It won 7 awards.", "number 7"),
        ("The film stars Frances McDormand as a police chief.", "name 'Frances McDormand'"),
    ],
)
def test_an_invented_fact_fails_the_fact_check(catalogue, text, problem):
    problems = check_facts(text, item_facts(catalogue, "1", "movie"), catalogue)
    assert any(problem in p for p in problems), problems


def test_an_item_without_a_year_cannot_be_given_one(catalogue):
    problems = check_facts("An action film from 1995.", item_facts(catalogue, "3"), catalogue)
    assert problems == ["year 1995 is not the item's year (unknown)"]


def test_describe_regenerates_after_a_failed_fact_check(catalogue):
    llm = fake_llm('{"text": "Fargo (1994) stars Frances McDormand."}',
                   '{"text": "Fargo is a 1996 crime thriller set in Minnesota."}')  # fmt: skip
    result = generate_grounded(llm, catalogue, item_facts(catalogue, "1", "movie"),
                               "description")  # fmt: skip
    assert result.ok and result.text == "Fargo is a 1996 crime thriller set in Minnesota."
    assert result.attempts == 2 and result.rejected == ["Fargo (1994) stars Frances McDormand."]
    assert any("year 1994" in p for p in result.problems[0])
    # the second prompt names what was wrong with the first answer
    assert "year 1994 is not the movie's year" in llm.calls[-1].messages[0]["content"]


def test_promote_drops_the_text_when_every_attempt_invents(catalogue):
    bad = '{"text": "Toy Story won 3 Oscars in 1996!"}'
    llm = fake_llm(bad, bad, "not json")
    facts = item_facts(catalogue, "2", "movie")
    result = generate_grounded(llm, catalogue, facts, "promotion", audience="families",
                               attempts=3)  # fmt: skip
    assert not result.ok and result.text is None and result.attempts == 3
    assert len(result.problems) == 3 and "LLM error" in result.problems[2][0]
    assert "Audience: families" in llm.calls[0].messages[0]["content"]


def _enrichment(description: str, tags: list[str]) -> str:
    return json.dumps({"description": description, "tags": tags})


def test_enrichment_is_cached_resumed_and_fed_into_item_text(catalogue, tmp_path):
    llm = fake_llm(_enrichment("A snowy crime story in Minnesota.", ["Crime", "snow", "1970s"]),
                   _enrichment("A toy comedy.", ["toys", "family"]))  # fmt: skip
    report = job.enrich_items(llm, catalogue, tmp_path, noun="movie", limit=2)
    assert (report.requested, report.done, report.cached, report.failed) == (2, 2, 0, 0)
    cache = job.load_cache(job.cache_file(tmp_path, llm.model_name))
    assert cache["1"].tags == ["crime", "snow"]  # "1970s" fails the fact-check: dropped
    # a rerun resumes: nothing left to do, no LLM call (the fake would fail on one)
    again = job.enrich_items(fake_llm(), catalogue, tmp_path, noun="movie", limit=2)
    assert (again.done, again.cached) == (0, 2)
    # a torn last line (a killed run) is skipped, not fatal
    with job.cache_file(tmp_path, llm.model_name).open("a") as f:
        f.write('{"item_id": "3", "content')
    assert set(job.load_cache(job.cache_file(tmp_path, llm.model_name))) == {"1", "2"}

    items_dir = tmp_path
    catalogue.items.to_parquet(items_dir / "items.parquet")
    catalogue.interactions.to_parquet(items_dir / "interactions.parquet")
    assert job.activate(items_dir, llm.model_name) == 2
    enriched = Catalogue.load(items_dir)
    assert enriched.enriched == 2
    text = enriched.item_text(enriched.index_of["1"])
    assert text.endswith("About: A snowy crime story in Minnesota. Tags: crime, snow.")
    assert job.deactivate(items_dir) and Catalogue.load(items_dir).enriched == 0


def test_a_description_that_fails_twice_is_kept_out(catalogue, tmp_path):
    bad = _enrichment("A 1970s comedy.", ["fun"])
    report = job.enrich_items(fake_llm(bad, bad), catalogue, tmp_path, item_ids=["1"])
    assert (report.done, report.failed) == (1, 1)
    entry = job.load_cache(job.cache_file(tmp_path, ""))["1"]
    assert entry.description is None and len(entry.problems) == 2
    with pytest.raises(FileNotFoundError, match="run `recpilot enrich` first"):
        job.activate(tmp_path / "other", "m")


def test_describe_an_unknown_item_is_a_clean_error_before_any_llm(tiny_settings):
    out = CliRunner().invoke(
        app, ["--home", str(tiny_settings.home), "--dataset", "tiny", "describe", "nope"]
    )
    assert out.exit_code == 2, out.output
    assert "unknown item id 'nope'" in out.output and "Traceback" not in out.output


def test_a_failing_sentence_is_cut_and_the_rest_kept(catalogue):
    llm = fake_llm('{"text": "Fargo is a 1996 crime thriller. It stars Tom Hanks as a cop."}')
    result = generate_grounded(llm, catalogue, item_facts(catalogue, "1", "movie"), "description")
    assert result.ok and result.attempts == 1
    assert result.text == "Fargo is a 1996 crime thriller."
    assert result.dropped_sentences == ["It stars Tom Hanks as a cop."]
    assert any("Tom Hanks" in p for p in result.problems[0])
