"""Fixtures for integration tests against the real embedded LLM (llama-cpp-python server).

The 1.1 GB GGUF is assembled once into a shared cache — ``RECPILOT_TEST_LLM_HOME``
(default ``~/.cache/recpilot-tests``) — and served from there; each session's settings
home (logs) is a temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recpilot.config.settings import Settings
from recpilot.llm.server import EmbeddedLLMServer, ensure_gguf


def shared_llm_home() -> Path:
    """Folder whose ``llm/`` holds the assembled GGUF shared by test sessions."""
    default = Path.home() / ".cache" / "recpilot-tests"
    return Path(os.environ.get("RECPILOT_TEST_LLM_HOME", default))


@pytest.fixture(scope="session")
def shared_gguf() -> Path:
    """The verified GGUF (assembled from the installed parts on first use)."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed: pip install 'recpilot[embedded]'")
    return ensure_gguf(Settings(home=shared_llm_home(), _env_file=None))


@pytest.fixture(scope="session")
def embedded_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with a temporary home (server log under ``home/logs``)."""
    return Settings(home=tmp_path_factory.mktemp("llm-home"), _env_file=None)


@pytest.fixture(scope="session")
def embedded_llm(embedded_settings: Settings, shared_gguf: Path) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of one embedded server for the session."""
    with EmbeddedLLMServer(embedded_settings, gguf_path=shared_gguf) as server:
        yield server.base_url


@pytest.fixture(scope="session")
def ml100k_home(tmp_path_factory: pytest.TempPathFactory, ml100k_dir: Path) -> Path:
    """A data directory with ml-100k fetched from the shared copy, indexed and trained."""
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("ml100k-service-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECPILOT_")}
    env["RECPILOT_HOME"] = str(home)
    for args in (["data", "fetch", "movielens-100k", "--from", str(ml100k_dir)], ["index"],
                 ["train"]):  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-m", "recpilot.cli", *args],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    return home
