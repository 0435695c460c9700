"""The no-LLM eval benchmark's catalogue (recpilot.evals.bench_eval_data), small sizes.

The benchmark itself (timing) runs only as ``python -m recpilot.evals.bench_eval``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recpilot.data.catalogue import Catalogue
from recpilot.data.ingest import ingest
from recpilot.data.meta import LikedRule
from recpilot.evals.bench_eval_data import build_music_like
from recpilot.evals.split import timestamp_kind


@pytest.fixture(scope="module")
def built(ml_latest_small_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    build_music_like(ml_latest_small_dir, out, n_items=300, n_users=700, per_user=20, seed=3)
    return out


def test_shape_like_the_music_file(built: Path, ml_latest_small_dir: Path) -> None:
    items = pd.read_csv(built / "items.csv", dtype={"item_id": str})
    inter = pd.read_csv(built / "interactions.csv", dtype={"item_id": str})
    assert list(items.columns) == ["item_id", "title", "categories"] and len(items) == 300
    assert list(inter.columns) == ["user_id", "item_id", "rating"]  # no timestamp column
    assert inter["user_id"].nunique() == 700  # more listeners than the 610 real users
    per_user = inter.groupby("user_id").size()
    assert per_user.max() == 20 and per_user.min() >= 1
    assert set(inter["item_id"]) <= set(items["item_id"])
    assert not inter.duplicated(["user_id", "item_id"]).any()
    # each user's rows by ascending item id, as in the music file
    as_int = inter.assign(i=inter["item_id"].astype(int))
    ascending = as_int.groupby("user_id", sort=False)["i"].apply(
        lambda s: s.is_monotonic_increasing
    )
    assert ascending.all()
    # play counts: positive integers with a long tail
    assert (inter["rating"] >= 1).all() and inter["rating"].dtype.kind == "i"
    assert inter["rating"].quantile(0.99) > 5 * inter["rating"].median()
    # the kept items are the most rated ones of the source, and popularity is long-tailed
    source = pd.read_csv(ml_latest_small_dir / "ratings.csv")
    top = source.groupby("movieId").size().sort_values(ascending=False)
    assert str(top.index[0]) in set(items["item_id"])
    pop = inter.groupby("item_id").size().sort_values(ascending=False)
    assert pop.iloc[0] > 4 * pop.median()


def test_same_seed_same_files(built: Path, ml_latest_small_dir: Path, tmp_path: Path) -> None:
    build_music_like(ml_latest_small_dir, tmp_path / "a", n_items=300, n_users=700,
                     per_user=20, seed=3)  # fmt: skip
    build_music_like(ml_latest_small_dir, tmp_path / "b", n_items=300, n_users=700,
                     per_user=20, seed=4)  # fmt: skip
    same = (tmp_path / "a" / "interactions.csv").read_bytes()
    assert same == (built / "interactions.csv").read_bytes()
    assert same != (tmp_path / "b" / "interactions.csv").read_bytes()


def test_goes_through_the_normal_ingest(built: Path, tmp_path: Path) -> None:
    meta = ingest(
        built / "items.csv", built / "interactions.csv", tmp_path / "ds", "bench",
        liked=LikedRule.parse("top-share:0.5"), item_noun="movie",
    )  # fmt: skip
    assert (meta.n_items, meta.n_users) == (300, 700)
    cat = Catalogue.load(tmp_path / "ds")
    assert timestamp_kind(cat.interactions["timestamp"]) == "row-order"  # → seeded hold-out
    liked = cat.user_liked_ids(cat.interactions["user_id"].iloc[0])
    assert liked  # the top half of each listener's counts


def test_refuses_a_folder_without_movielens(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="movies.csv"):
        build_music_like(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="sizes must be >= 1"):
        build_music_like(tmp_path, tmp_path / "out", n_users=0)
