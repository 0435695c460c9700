"""A non-movie, implicit-feedback dataset without timestamps, end to end through the CLI.

Built at test time from ml-latest-small's ``tags.csv`` (never copied into the repo): the
items are the 1,475 distinct tags, each "user" is a movie, and an interaction is a tag
applied to that movie, with the number of times as a play-count-like value. The files
use the delimiters and column names a user's export might have (``;`` in a ``.txt``,
tabs in a ``.dat``, different id column names per file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def recpilot(home: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPILOT_")}
    env.update(RECPILOT_HOME=str(home), RECPILOT_DATASET="ml-tags")
    return subprocess.run(
        [sys.executable, "-m", "recpilot.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tag_files(tmp_path_factory, ml_latest_small_dir: Path) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tags-src")
    tags = pd.read_csv(ml_latest_small_dir / "tags.csv")
    tags["tag"] = tags["tag"].str.strip().str.lower()
    names = sorted(tags["tag"].unique())
    tag_id = {name: n + 1 for n, name in enumerate(names)}
    pd.DataFrame({"tag_id": [tag_id[n] for n in names], "name": names}).to_csv(
        folder / "tags.txt", sep=";", index=False
    )
    applied = (
        tags.assign(movie="movie:" + tags["movieId"].astype(str), tag_id=tags["tag"].map(tag_id))
        .groupby(["movie", "tag_id"]).size().reset_index(name="times")
    )  # fmt: skip
    applied.to_csv(folder / "applied.dat", sep="\t", index=False)
    return folder / "tags.txt", folder / "applied.dat"


def test_tags_as_items_go_through_ingest_index_train_recommend_eval(tmp_path, tag_files):
    items, interactions = tag_files
    home = tmp_path / "home"
    out = recpilot(
        home, "data", "ingest", "--name", "ml-tags", "--items", str(items),
        "--interactions", str(interactions),
        "--items-column", "item_id=tag_id", "--items-column", "title=name",
        "--interactions-column", "user_id=movie", "--interactions-column", "item_id=tag_id",
        "--interactions-column", "rating=times", "--liked", "top-share:0.5",
        "--item-noun", "tag",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "1475 tags" in out.stdout and "liked: top_share" in out.stdout
    meta = json.loads((home / "datasets" / "ml-tags" / "meta.json").read_text())
    assert meta["item_noun"] == "tag" and meta["liked"] == {
        "kind": "top_share", "min_rating": None, "share": 0.5
    }  # fmt: skip

    for step in (["index"], ["train"]):
        done = recpilot(home, *step)
        assert done.returncode == 0, done.stderr

    rec = recpilot(home, "recommend", "--user", "movie:1", "-k", "5", "--no-llm", "--json")
    assert rec.returncode == 0, rec.stderr
    result = json.loads(rec.stdout)
    shown = [i["item_id"] for i in result["items"]]
    names = pd.read_csv(items, sep=";", dtype=str).set_index("tag_id")["name"]
    applied = pd.read_csv(interactions, sep="\t", dtype=str)
    own = set(applied.loc[applied["movie"] == "movie:1", "tag_id"])
    assert len(shown) == 5 and not own & set(shown)  # known tags are not recommended back
    assert [i["title"] for i in result["items"]] == [names[i] for i in shown]
    assert all("()" not in i["reason"] for i in result["items"])  # no empty year/genres

    report_dir = tmp_path / "eval"
    ev = recpilot(
        home, "eval", "--no-llm", "--min-user", "3", "--min-item", "1", "--max-users", "80",
        "--no-sampled", "--cold-users", "0", "--out", str(report_dir),
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    report = (report_dir / "report.md").read_text()
    assert "seeded random order per user" in report  # no timestamps: no leave-one-out by time
    results = json.loads((report_dir / "results.json").read_text())
    full = results["results"]["full"]
    assert full["popularity"]["users"] == 80
    assert 0 < full["recall+coarse[hybrid]"]["HR@10"] <= 1
