"""Shared pytest fixtures: an isolated data directory and the shared MovieLens data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recpilot.config.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Folder with the read-only MovieLens copies (``RECPILOT_SHARED_DATA`` or ../shared/data)."""
    return Path(os.environ.get("RECPILOT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data directory is a fresh temporary folder."""
    return Settings(home=tmp_path / "home", _env_file=None)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The original-format ml-100k folder (u.data, u.item, ...)."""
    path = shared_data_dir() / "ml-100k"
    if not (path / "u.data").exists():
        pytest.fail(f"MovieLens 100K not found at {path}; set RECPILOT_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def ml_latest_small_dir() -> Path:
    """The ml-latest-small folder (movies.csv, ratings.csv, ...)."""
    path = shared_data_dir() / "ml-latest-small"
    if not (path / "ratings.csv").exists():
        pytest.fail(f"ml-latest-small not found at {path}; set RECPILOT_SHARED_DATA")
    return path
