"""The cold-start protocol's message is built by code from the user's training items."""

import pandas as pd
import pytest

from recpilot.data.catalogue import Catalogue
from recpilot.evals.cold_start import (
    ColdStartConfig,
    first_message,
    markdown_table,
    run_cold_start,
    selected_pipelines,
)


def test_first_message_names_top_rated_recent_items_and_top_genres(tiny_settings):
    cat = Catalogue.load(tiny_settings.dataset_dir)
    rows = pd.DataFrame(
        {
            "item_id": ["11", "12", "16", "20", "9"],
            "rating": [5.0, 5.0, 4.0, 5.0, 2.0],
            "timestamp": [1, 2, 3, 4, 5],
        }
    )
    text, named = first_message(cat, rows)
    assert named == ["20", "12", "11"]  # 5 stars, most recent first
    assert text == (
        "I loved The Fugitive (1993), Pulp Fiction (1994) and Fargo (1996). "
        "I mostly enjoy Crime and Thriller. What should I watch next?"
    )
    with pytest.raises(ValueError, match="at least three"):
        first_message(cat, rows.head(2))


def test_markdown_table_lists_every_pipeline():
    results = {
        "config": {"k": 10},
        "results": {
            "popularity": {"HR@10": 0.1, "NDCG@10": 0.05, "users": 3},
            "no-llm": {"HR@10": 0.2, "NDCG@10": 0.1, "users": 3, "HR@10_ci95": [0.05, 0.4],
                       "NDCG@10_ci95": [0.01, 0.2]},
        },
    }
    lines = markdown_table(results).splitlines()
    assert lines[-2] == "| popularity | 0.1000 | — | 0.0500 | — | 3 |"
    assert lines[-1] == "| no-llm | 0.2000 | 0.050–0.400 | 0.1000 | 0.010–0.200 | 3 |"


def test_pipelines_are_selected_by_name_and_llm_ones_need_the_llm():
    names = [p.name for p in selected_pipelines(ColdStartConfig(llm=False))]
    assert names == ["popularity", "no-llm", "no-llm:hard-genres", "no-llm:no-titles",
                     "no-llm:als", "no-llm:before"]  # fmt: skip
    picked = selected_pipelines(ColdStartConfig(llm=True, pipelines=["llm", "popularity"]))
    assert [p.name for p in picked] == ["popularity", "llm"]
    with pytest.raises(ValueError, match="unknown pipeline"):
        selected_pipelines(ColdStartConfig(pipelines=["nope"]))
    with pytest.raises(ValueError, match="--no-llm"):
        selected_pipelines(ColdStartConfig(llm=False, pipelines=["llm"]))


def test_each_pipeline_switch_takes_effect(tiny_settings):
    """The pipelines run the fixed workflow: under the agent's rules controller (the
    default) the titles would be read anyway and ``no-titles`` would switch nothing."""
    config = ColdStartConfig(users=3, llm=False, min_user=3, min_item=1,
                             pipelines=["no-llm", "no-llm:no-titles"])  # fmt: skip
    out = run_cold_start(tiny_settings, config)
    assert len(out["per_user"]) == 3
    for row in out["per_user"]:
        assert row["no-llm"]["named"] and "i2i" in row["no-llm"]["channels"], row
        assert row["no-llm:no-titles"]["named"] == [], row
        assert "i2i" not in row["no-llm:no-titles"]["channels"], row
