"""The real embedded server: its build runs here, and its death is reported, not hidden."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from recpilot.agent.runner import Recommender
from recpilot.config.settings import Settings
from recpilot.llm import build
from recpilot.llm import server as llm_server

pytestmark = pytest.mark.integration


def test_the_installed_build_uses_only_instructions_this_machine_runs():
    info = build.system_info()
    assert info, "llama_cpp does not load"
    if build.is_x86_64():
        assert build.refused_in_build(info, build.probe_features()) == []


def test_plan_and_fine_use_the_llm_started_by_recpilot(ml100k_home, shared_gguf, monkeypatch):
    """README command 1's path: recpilot starts the embedded server itself (no base URL)."""
    monkeypatch.setattr(llm_server, "ensure_gguf", lambda settings: shared_gguf)
    settings = Settings(home=ml100k_home, _env_file=None)
    with Recommender(settings, use_llm=True) as rec:
        result = rec.run("196", None, 10)
    assert result.plan.source == "llm", result.fallbacks
    assert "fine" in result.stages_ran and not result.fine_fell_back, result.fallbacks
    assert result.llm.failed == 0 and result.llm.calls >= 2


def test_killing_the_server_mid_run_is_reported_as_its_death(
    ml100k_home, shared_gguf, monkeypatch
):
    monkeypatch.setattr(llm_server, "ensure_gguf", lambda settings: shared_gguf)
    settings = Settings(home=ml100k_home, llm_retries=0, embedded_nice=10, _env_file=None)
    before = set(llm_server._LIVE.values())
    with Recommender(settings, use_llm=True) as rec:
        (server,) = [s for s in llm_server._LIVE.values() if s not in before]
        pid = server._proc.pid  # type: ignore[union-attr]
        # below the caller's CPU priority by RECPILOT_EMBEDDED_NICE
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.nice(0) + 10)
        killer = threading.Timer(1.0, os.kill, args=(pid, signal.SIGKILL))
        killer.start()  # the turn's first LLM call is in flight by then
        result = rec.run("196", "something light from the 90s", 5)
        killer.join()
    assert len(result.items) == 5  # the funnel still answers, without the LLM
    notes = " ".join(result.fallbacks)
    assert "embedded LLM server died (signal SIGKILL" in notes, result.fallbacks
    assert "log " in notes and "fix:" in notes
    assert "Connection error" not in notes
