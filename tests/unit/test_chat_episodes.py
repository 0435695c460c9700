"""eval-chat end to end without an LLM: determinism, resume, isolation, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recpilot.cli.main import app
from recpilot.config.settings import Settings
from recpilot.evals.chat import episodes as episodes_mod
from recpilot.evals.chat.episodes import ChatEvalConfig, Episode, run_chat_eval
from recpilot.evals.chat.metrics import summarize_run
from recpilot.evals.chat.report import write_outputs


def config(tmp: Path | None = None, **kw: object) -> ChatEvalConfig:
    base = dict(users=6, turns=3, k=3, seed=1, pipelines=["rules"], min_user=3, min_item=1,
                out_dir=tmp)  # fmt: skip
    return ChatEvalConfig(**{**base, **kw})  # type: ignore[arg-type]


def without_latency(raw: dict) -> list[dict]:
    out = []
    for ep in raw["episodes"]:
        ep = json.loads(json.dumps(ep))
        for t in ep["turns"]:
            t.pop("latency_ms")
        out.append(ep)
    return out


def test_same_seed_same_episodes_and_numbers(tiny_settings: Settings, tmp_path: Path) -> None:
    a = run_chat_eval(tiny_settings, config(tmp_path / "a"))
    b = run_chat_eval(tiny_settings, config(tmp_path / "b"))
    assert len(a["episodes"]) == 6 * 2  # users × settings
    assert without_latency(a) == without_latency(b)
    sa, sb = summarize_run(a), summarize_run(b)
    for setting in ("known", "new"):
        ma, mb = sa["results"][setting]["rules"], sb["results"][setting]["rules"]
        for key in ("hit@1", "hit@5", "hit@10", "hit@10_ci95", "AT", "AT_ci95",
                    "turns_to_first_hit", "hit_rate_by_turn"):  # fmt: skip
            assert ma[key] == mb[key], key
    other = run_chat_eval(tiny_settings, config(tmp_path / "c", seed=2))
    assert without_latency(other) != without_latency(a)


def test_episodes_use_only_the_public_api_and_are_isolated(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    home_files = {f: f.stat().st_mtime_ns for f in tiny_settings.home.glob("*.sqlite")}
    raw = run_chat_eval(tiny_settings, config(tmp_path / "run"))
    eps = [Episode.model_validate(e) for e in raw["episodes"]]
    for ep in eps:
        assert 1 <= len(ep.turns) <= 3
        if ep.first_hit is not None:
            assert ep.first_hit == len(ep.turns)  # stops at the hit
        assert sum(t.repeated for t in ep.turns) == 0  # the thread never re-shows an item
        assert all(t.llm_calls == 0 and t.plan_source == "rules" for t in ep.turns)
    # nothing was written to the user's home: checkpoints and profiles are in the run folder
    after = {f: f.stat().st_mtime_ns for f in tiny_settings.home.glob("*.sqlite")}
    assert after == home_files
    assert (tmp_path / "run" / "agent-home" / "checkpoints.sqlite").exists()
    # the known user's test item is never in their training history: it can be shown
    assert raw["split"]["order"] == "time"
    paths = write_outputs(summarize_run(raw), tmp_path / "run")
    text = paths["markdown"].read_text()
    assert "| known | rules | 6 |" in text and "AT" in text
    assert paths["plot"].stat().st_size > 1000


def test_resume_reuses_saved_episodes(
    tiny_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_chat_eval(tiny_settings, config(tmp_path))
    with pytest.raises(ValueError, match="--resume"):
        run_chat_eval(tiny_settings, config(tmp_path))

    def boom(*args: object, **kw: object) -> None:
        raise AssertionError("a saved episode was run again")

    monkeypatch.setattr(episodes_mod, "run_episode", boom)
    monkeypatch.setattr(episodes_mod, "Recommender", boom)  # a finished run builds no agent
    again = run_chat_eval(tiny_settings, config(tmp_path, resume=True))
    assert again["episodes"] == first["episodes"]
    fewer = run_chat_eval(tiny_settings, config(tmp_path, resume=True, users=3))
    assert fewer["episodes"] == [e for e in first["episodes"] if e["user_id"] in fewer["users"]]


def test_the_agent_does_not_import_the_simulator() -> None:
    code = (
        "import sys, recpilot.agent.runner, recpilot.agent.graph, recpilot.service.app;"
        "print([m for m in sys.modules if m.startswith('recpilot.evals')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pipeline", "magic"], "unknown pipeline"),
        (["--no-llm", "--pipeline", "llm"], "--no-llm runs only the rules pipeline"),
        (["--setting", "old"], "setting"),
        (["--resume"], "--resume needs --out"),
        (["--split", "file"], "split"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    tiny_settings: Settings, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        app, ["--home", str(tiny_settings.home), "--dataset", "tiny", "eval-chat", *args]
    )
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in result.output


def test_a_smaller_run_is_a_prefix_of_a_larger_one() -> None:
    users = [str(u) for u in range(200)]
    order = episodes_mod.user_order(users, seed=0)
    assert sorted(order) == sorted(users) and order != users
    assert episodes_mod.user_order(users, seed=0) == order
    assert episodes_mod.user_order(users, seed=1) != order


def test_eval_refuses_an_unknown_split_order(tiny_settings: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["--home", str(tiny_settings.home), "eval", "--dataset", "tiny", "--no-llm",
         "--split", "file", "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "split" in result.output
