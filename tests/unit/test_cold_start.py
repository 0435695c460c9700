"""The cold-start protocol's message is built by code from the user's training items."""

import pandas as pd
import pytest

from recpilot.data.catalogue import Catalogue
from recpilot.evals.cold_start import first_message, markdown_table


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
        "results": {"popularity": {"HR@10": 0.1, "NDCG@10": 0.05, "users": 3}},
    }
    assert markdown_table(results).splitlines()[-1] == "| popularity | 0.1000 | 0.0500 | 3 |"
