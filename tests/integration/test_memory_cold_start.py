"""Profile memory and cold start against the real embedded LLM, real SQLite, ml-100k.

LLM calls are kept few: fine ranking is off (it is tested elsewhere); each turn costs
the understand and plan calls (+ one sample-generation call on the cold path).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recpilot.agent.runner import Recommender
from recpilot.config.settings import Settings
from recpilot.data.item_index import build_index
from recpilot.data.movielens import fetch_movielens_100k
from recpilot.funnel.training import train_models

pytestmark = pytest.mark.integration

TOY_STORY, ALADDIN = "1", "95"


@pytest.fixture(scope="module")
def home(tmp_path_factory, ml100k_dir) -> Path:
    """A data directory with ml-100k (from the shared copy), indexed and trained."""
    home = tmp_path_factory.mktemp("memory-home")
    settings = Settings(home=home, _env_file=None)
    fetch_movielens_100k(settings.dataset_dir, ml100k_dir, progress=lambda *_: None)
    build_index(settings)
    train_models(settings)
    return home


def settings_for(home: Path, llm_url: str) -> Settings:
    return Settings(
        home=home, llm_base_url=llm_url, llm_json_mode="json_object_schema", _env_file=None
    )


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPILOT_")}
    env["RECPILOT_HOME"] = str(home)
    env["COLUMNS"] = "80"  # the forget report must stay on one line even when narrow
    return subprocess.run(
        [sys.executable, "-m", "recpilot.cli", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_no_horror_holds_two_turns_later_survives_restart_and_forget_erases(home, embedded_llm):
    user, thread = "h4-viewer", "h4-thread"
    # the fixed workflow, whose LLM reads every message (the rules controller, the default,
    # makes no LLM call on these turns; its threads are tested in test_agent_embedded.py)
    settings = settings_for(home, embedded_llm).model_copy(update={"controller": "pipeline"})
    with Recommender(settings) as rec:
        first = rec.run(user, "no horror please, something exciting", 10, fine_mode="off",
                        thread_id=thread)  # fmt: skip
        rec.run(user, "maybe a comedy", 10, fine_mode="off", thread_id=thread)
        third = rec.run(user, "more like that", 10, fine_mode="off", thread_id=thread)
    assert "Horror" in first.constraints.exclude_categories
    assert "Horror" in third.constraints.exclude_categories
    assert third.items and all("Horror" not in i.categories for i in third.items)
    assert third.llm.calls >= 1 and third.stages_ran[-1] == "remember"

    # a new process sees the profile; the exclusion now applies outside the thread too
    shown = cli(home, "profile", "show", user, "--json")
    assert shown.returncode == 0, shown.stderr
    profile = json.loads(shown.stdout)
    assert "Horror" in profile["avoid_categories"] and profile["preferences"]
    with Recommender(settings_for(home, embedded_llm), use_llm=False) as rec:
        later = rec.run(user, None, 10)
    assert "Horror" in later.constraints.exclude_categories
    assert all("Horror" not in i.categories for i in later.items)

    forgot = cli(home, "profile", "forget", user)
    assert forgot.returncode == 0, forgot.stderr
    assert "deleted 1 profile item(s), 1 chat thread(s) (h4-thread), 4 trace(s)" in forgot.stdout
    traces = sqlite3.connect(home / "traces.sqlite")
    assert (
        traces.execute("SELECT count(*) FROM traces WHERE user_id = ?", (user,)).fetchone()[0] == 0
    )
    store = sqlite3.connect(home / "profiles.sqlite")
    assert not store.execute("SELECT * FROM store WHERE prefix LIKE ?", (f"%{user}%",)).fetchall()
    db = sqlite3.connect(home / "checkpoints.sqlite")
    for table in ("checkpoints", "writes"):
        rows = db.execute(f"SELECT * FROM {table} WHERE thread_id = ?", (thread,)).fetchall()
        assert rows == [], table
    meta = db.execute("SELECT count(*) FROM checkpoints WHERE metadata LIKE ?", (f"%{user}%",))
    assert meta.fetchone()[0] == 0
    raw = (home / "profiles.sqlite").read_bytes() + (home / "checkpoints.sqlite").read_bytes()
    assert user.encode() not in raw  # vacuumed: not even in free pages


def test_unknown_user_who_loved_toy_story_and_aladdin_gets_other_kids_films(home, embedded_llm):
    with Recommender(settings_for(home, embedded_llm)) as rec:
        result = rec.run(
            None, "I loved Toy Story and Aladdin, something for my kids", 10, fine_mode="off",
            sample_generation=True,
        )  # fmt: skip
    assert result.plan.path == "cold" and "no user id" in result.plan.reason
    assert result.plan.sample_generation and "generate" in result.stages_ran
    assert {TOY_STORY, ALADDIN} <= set(result.intent.liked_items)
    ids = [i.item_id for i in result.items]
    assert len(ids) == 10 and not {TOY_STORY, ALADDIN} & set(ids)
    family = [i for i in result.items if {"Children's", "Animation"} & set(i.categories)]
    assert len(family) == 10, [(i.title, i.categories) for i in result.items]
