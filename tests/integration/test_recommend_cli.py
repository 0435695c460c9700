"""End to end through the CLI: real embedded LLM, real Chroma, real SQLite, ml-100k."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

RECPILOT = [sys.executable, "-m", "recpilot.cli"]


def recpilot(home: Path, *args: str, llm_url: str | None, stdin: str | None = None, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPILOT_")}
    env["RECPILOT_HOME"] = str(home)
    env["COLUMNS"] = "200"
    if llm_url:
        env["RECPILOT_LLM_BASE_URL"] = llm_url
        env["RECPILOT_LLM_JSON_MODE"] = "json_object_schema"
    return subprocess.run(
        [*RECPILOT, *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory, ml100k_dir) -> Path:
    """A data directory with ml-100k fetched from the shared copy, indexed and trained."""
    home = tmp_path_factory.mktemp("ml100k-home")
    for args in (["data", "fetch", "movielens-100k", "--from", str(ml100k_dir)], ["index"],
                 ["train"]):  # fmt: skip
        out = recpilot(home, *args, llm_url=None)
        assert out.returncode == 0, out.stderr
    return home


@pytest.fixture(scope="module")
def rated_by_196(ml100k_dir) -> set[str]:
    data = pd.read_csv(ml100k_dir / "u.data", sep="\t", names=["u", "i", "r", "t"], dtype=str)
    return set(data.loc[data.u == "196", "i"])


@pytest.fixture(scope="module")
def items(ml100k_dir) -> dict[str, dict]:
    genres = [g.split("|")[0] for g in (ml100k_dir / "u.genre").read_text().split("\n") if g]
    out = {}
    for line in (ml100k_dir / "u.item").read_text(encoding="latin-1").splitlines():
        f = line.split("|")
        year = int(f[2][-4:]) if f[2] else None
        flags = zip(genres, f[5:], strict=True)
        out[f[0]] = {"year": year, "genres": {g for g, b in flags if b == "1"}}
    return out


def check_ten_valid(result: dict, rated: set[str], catalogue: dict) -> list[str]:
    ids = [i["item_id"] for i in result["items"]]
    assert len(ids) == 10 == len(set(ids))
    assert all(i in catalogue for i in ids)
    assert not set(ids) & rated
    assert all(i["reason"].strip() for i in result["items"])
    return ids


def test_recommend_user_196_with_the_embedded_llm(home, embedded_llm, rated_by_196, items):
    out = recpilot(home, "recommend", "--user", "196", "--json", llm_url=embedded_llm)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    check_ten_valid(result, rated_by_196, items)
    assert result["stages_ran"] == [
        "understand",
        "plan",
        "recall",
        "coarse",
        "fine",
        "respond",
        "remember",
    ]
    assert not result["fine_fell_back"]
    assert result["llm"]["calls"] >= 2 and result["llm"]["prompt_tokens"] > 0
    assert result["plan"]["path"] == "warm"


def test_llm_unreachable_still_returns_ten_and_says_fine_fell_back(home, rated_by_196, items):
    out = recpilot(home, "recommend", "--user", "196", "--json", llm_url="http://127.0.0.1:9/v1")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    check_ten_valid(result, rated_by_196, items)
    assert result["fine_fell_back"] is True
    assert any(f.startswith("fine:") for f in result["fallbacks"])


def test_chat_constraints_hold_across_turns(home, embedded_llm, rated_by_196, items):
    turns = "no horror, only from the 1990s\nsomething lighter\nmore like that\n"
    out = recpilot(home, "chat", "--user", "196", "--json", "--thread", "it-1",
                   llm_url=embedded_llm, stdin=turns)  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 3
    shown: list[str] = []
    for result in results:
        ids = check_ten_valid(result, rated_by_196, items)
        for i in ids:
            assert "Horror" not in items[i]["genres"]
            assert 1990 <= items[i]["year"] <= 1999
        assert not set(ids) & set(shown)  # nothing shown twice in a thread
        shown += ids


def test_bad_input_is_one_clear_line(home):
    out = recpilot(home, "recommend", "--user", "196", "-k", "0", llm_url=None)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    out = recpilot(home, "--dataset", "nope", "recommend", "--no-llm", llm_url=None)
    assert out.returncode == 1 and "error:" in out.stderr and "Traceback" not in out.stderr


def test_quickstart_on_a_fresh_home_starts_and_stops_the_embedded_llm(
    tmp_path, ml100k_dir, rated_by_196, items
):
    """The README's first command, minus the install: nothing started by hand, no key."""
    home = tmp_path / "fresh"
    out = recpilot(home, "quickstart", "--from", str(ml100k_dir), "--json", llm_url=None)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # progress goes to stderr with --json
    check_ten_valid(result, rated_by_196, items)
    assert "fine" in result["stages_ran"] and not result["fine_fell_back"]
    gguf = str(home / "llm")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if "llama_cpp.server" in line and gguf in line]


def test_train_tune_picks_settings_on_validation_and_recommend_uses_them(home, tmp_path):
    tuned = tmp_path / "home"
    shutil.copytree(home, tuned)
    out = recpilot(tuned, "train", "--tune", llm_url=None, timeout=900)
    assert out.returncode == 0, out.stderr
    assert "validation NDCG@10" in out.stdout and "coarse model: hybrid" in out.stdout
    params = json.loads((tuned / "models" / "movielens-100k" / "hybrid.json").read_text())
    assert set(params) >= {"als_weight", "covisit_weight", "pop_weight", "window"}
    out = recpilot(tuned, "recommend", "--user", "196", "--no-llm", "--json", llm_url=None)
    assert out.returncode == 0, out.stderr
    items = json.loads(out.stdout)["items"]
    assert len(items) == 10 and all(i["reason"] for i in items)
