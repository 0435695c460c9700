"""eval-chat with an LLM pipeline on the real embedded LLM (tiny run: 2 users, 2 turns): the
fixed understand → plan workflow, whose LLM reads every message (the LLM controller is
covered by ``test_agent_embedded.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.evals.chat.episodes import ChatEvalConfig, Episode, run_chat_eval
from recpilot.evals.chat.leakage import LeakageGuard
from recpilot.evals.chat.metrics import summarize_run
from recpilot.evals.chat.report import write_outputs

pytestmark = pytest.mark.integration


def test_tiny_eval_chat_with_the_llm_controller(
    ml100k_home: Path, embedded_llm: str, tmp_path: Path
) -> None:
    settings = Settings(home=ml100k_home, _env_file=None)
    config = ChatEvalConfig(users=2, turns=2, pipelines=["pipeline"], out_dir=tmp_path / "run")
    raw = run_chat_eval(settings, config, llm_base_url=embedded_llm)
    eps = [Episode.model_validate(e) for e in raw["episodes"]]
    assert sorted((e.setting, e.user_id) for e in eps) == sorted(
        (s, u) for s in ("known", "new") for u in raw["users"]
    )
    turns = [t for e in eps for t in e.turns]
    assert all(t.llm_calls >= 1 for t in turns)  # the LLM read every message
    assert sum(t.llm_calls - t.llm_failed for t in turns) >= len(turns)  # real answers
    assert all(t.prompt_tokens > 0 for t in turns if t.llm_failed < t.llm_calls)
    catalogue = Catalogue.load(settings.dataset_dir)
    for e in eps:
        guard = LeakageGuard(catalogue.get(e.target).title)
        assert all(guard.clean(t.message) for t in e.turns)
    results = summarize_run(raw)
    assert results["results"]["known"]["pipeline"]["cost"]["llm_calls_per_turn"] >= 1
    paths = write_outputs(results, tmp_path / "run")
    assert "| new | pipeline | 2 |" in paths["markdown"].read_text()
