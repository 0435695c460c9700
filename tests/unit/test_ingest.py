"""Tests for recpilot.data.ingest: canonical output, error messages, atomic replacement."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from recpilot.data.catalogue import Catalogue
from recpilot.data.ingest import IngestError, add_item_text, ingest, interactions_sha256, read_meta

ITEMS = (
    "item_id,title,categories,director\n"
    "1,Toy Story (1995),Animation|Comedy,Lasseter\n"
    "2,Heat,Action| Crime |Action,Mann\n"
    '3,"Usual Suspects, The (1995) ",Crime,Singer\n'
)
INTERACTIONS = "user_id,item_id,rating,timestamp\n10,1,4.5,100\n10,2,3,90\n11,3,5,80\n"


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "items.csv", ITEMS), write(tmp_path / "inter.csv", INTERACTIONS)


def test_canonical_output(files: tuple[Path, Path], tmp_path: Path) -> None:
    meta = ingest(*files, tmp_path / "ds", name="tiny", source="unit")
    assert (meta.n_items, meta.n_users, meta.n_interactions) == (3, 2, 3)
    assert read_meta(tmp_path / "ds") == meta
    schema = pq.read_schema(tmp_path / "ds" / "items.parquet")
    assert [str(t) for t in schema.types] == [
        "string", "string", "string", "list<element: string>", "int64", "string"
    ]  # fmt: skip
    items = pd.read_parquet(tmp_path / "ds" / "items.parquet")
    assert items["title"].tolist() == ["Toy Story", "Heat", "Usual Suspects, The"]
    assert items["year"].tolist()[0] == 1995 and pd.isna(items["year"][1])
    assert [list(c) for c in items["categories"]] == [
        ["Animation", "Comedy"], ["Action", "Crime"], ["Crime"]
    ]  # fmt: skip
    assert items["director"].tolist() == ["Lasseter", "Mann", "Singer"]
    inter = pd.read_parquet(tmp_path / "ds" / "interactions.parquet")
    assert inter.dtypes.astype(str).tolist() == ["str", "str", "float64", "int64"]
    assert inter["rating"].tolist() == [4.5, 3.0, 5.0]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_checksum_format_and_row_order_independence(tmp_path: Path) -> None:
    inter = pd.DataFrame(
        {"user_id": ["2", "10", "2"], "item_id": ["5", "1", "30"], "rating": [4.0, 3.5, 1.0],
         "timestamp": [7, 8, 9]}
    )  # fmt: skip
    expected = hashlib.sha256(b"2\t5\t4\t7\n2\t30\t1\t9\n10\t1\t3.5\t8").hexdigest()
    assert interactions_sha256(inter) == expected
    assert interactions_sha256(inter.iloc[::-1].reset_index(drop=True)) == expected


def test_implicit_feedback_and_explicit_year_column(tmp_path: Path) -> None:
    items = write(tmp_path / "i.tsv", "item_id\ttitle\tyear\ttext\na\tAlien (1979)\t1979\tspace\n")
    inter = write(tmp_path / "x.tsv", "user_id\titem_id\nu\ta\nv\ta\n")
    ingest(items, inter, tmp_path / "ds", name="t")
    got = pd.read_parquet(tmp_path / "ds" / "items.parquet").iloc[0]
    assert (got["title"], got["year"], got["text"]) == ("Alien (1979)", 1979, "space")
    inter_out = pd.read_parquet(tmp_path / "ds" / "interactions.parquet")
    assert inter_out["rating"].tolist() == [1.0, 1.0]
    assert inter_out["timestamp"].tolist() == [0, 1]


def test_parquet_input_with_list_categories(tmp_path: Path) -> None:
    items = pd.DataFrame({"id": [1, 2], "name": ["A", "B"], "tags": [["x", "y"], []]})
    items.to_parquet(tmp_path / "items.parquet")
    pd.DataFrame({"user_id": ["u"], "id": [2], "timestamp": [5]}).to_parquet(tmp_path / "i.parquet")
    columns = {"item_id": "id", "title": "name", "categories": "tags"}
    meta = ingest(tmp_path / "items.parquet", tmp_path / "i.parquet", tmp_path / "ds", "p", columns)
    out = pd.read_parquet(tmp_path / "ds" / "items.parquet")
    assert out["item_id"].tolist() == ["1", "2"] and list(out["categories"][0]) == ["x", "y"]
    assert meta.n_interactions == 1


def test_ml_latest_small_via_column_map(ml_latest_small_dir: Path, tmp_path: Path) -> None:
    meta = ingest(
        ml_latest_small_dir / "movies.csv",
        ml_latest_small_dir / "ratings.csv",
        tmp_path / "mls",
        name="ml-latest-small",
        columns={"item_id": "movieId", "user_id": "userId", "categories": "genres"},
    )
    assert (meta.n_items, meta.n_users, meta.n_interactions) == (9742, 610, 100836)
    items = pd.read_parquet(tmp_path / "mls" / "items.parquet").set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story" and items.loc["1", "year"] == 1995
    assert "Children" in items.loc["1", "categories"]


# -- errors -------------------------------------------------------------------------------


def error_for(tmp_path: Path, items: str | bytes, inter: str | bytes, **kw: object) -> str:
    i = write(tmp_path / "items.csv", items)
    x = write(tmp_path / "inter.csv", inter)
    with pytest.raises(IngestError) as info:
        ingest(i, x, tmp_path / "ds", name="t", **kw)  # type: ignore[arg-type]
    return str(info.value)


def test_missing_required_column_lists_present(tmp_path: Path) -> None:
    msg = error_for(tmp_path, "movieId,title\n1,A\n", INTERACTIONS)
    assert "items.csv" in msg and "'item_id'" in msg and "movieId, title" in msg


def test_missing_mapped_column_names_both(tmp_path: Path) -> None:
    inter = "uid,item_id\nu,1\n"
    msg = error_for(tmp_path, ITEMS, inter, columns={"user_id": "userId"})
    assert "inter.csv" in msg and "'userId' (user_id)" in msg and "present: uid, item_id" in msg


def test_mapped_optional_column_must_exist(tmp_path: Path) -> None:
    msg = error_for(tmp_path, ITEMS, INTERACTIONS, columns={"text": "overview"})
    assert "items.csv: missing column 'overview' (text)" in msg


def test_unknown_canonical_name_in_column_map(tmp_path: Path) -> None:
    assert "genre" in error_for(tmp_path, ITEMS, INTERACTIONS, columns={"genre": "genres"})


def test_undecodable_bytes_suggest_latin1(tmp_path: Path) -> None:
    items = "item_id,title\n1,Toy Story\n2,Nénette et Boni\n".encode("latin-1")
    msg = error_for(tmp_path, items, "user_id,item_id\nu,2\n")
    assert "items.csv: row 3, column 'title'" in msg and "--encoding latin-1" in msg
    meta = ingest(tmp_path / "items.csv", tmp_path / "inter.csv", tmp_path / "ds", "t",
                  encoding="latin-1")  # fmt: skip
    assert meta.n_items == 2
    assert pd.read_parquet(tmp_path / "ds" / "items.parquet")["title"][1] == "Nénette et Boni"


def test_duplicate_item_ids_give_both_rows(tmp_path: Path) -> None:
    msg = error_for(tmp_path, "item_id,title\n7,A\n8,B\n7,C\n", INTERACTIONS)
    assert "items.csv: row 4, column 'item_id'" in msg and "'7'" in msg and "row 2" in msg


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("", "timestamp is empty"), ("12.5", "'12.5'"), ("soon", "'soon'")],
)
def test_bad_timestamp(tmp_path: Path, cell: str, expected: str) -> None:
    inter = f"user_id,item_id,rating,timestamp\nu,1,4,100\nu,2,4,{cell}\n"
    msg = error_for(tmp_path, ITEMS, inter)
    assert "inter.csv: row 3, column 'timestamp'" in msg and expected in msg


def test_non_numeric_rating_with_mapped_name(tmp_path: Path) -> None:
    inter = "user_id,item_id,stars\nu,1,4\nu,2,five\n"
    msg = error_for(tmp_path, ITEMS, inter, columns={"rating": "stars"})
    assert "inter.csv: row 3, column 'stars' (rating)" in msg and "'five'" in msg


def test_row_numbers_count_blank_lines(tmp_path: Path) -> None:
    inter = "user_id,item_id,rating\nu,1,4\n\nu,2,x\n"
    assert "row 4, column 'rating'" in error_for(tmp_path, ITEMS, inter)


def test_unknown_item_in_interactions(tmp_path: Path) -> None:
    msg = error_for(tmp_path, ITEMS, "user_id,item_id\nu,1\nu,99\nv,98\n")
    assert "inter.csv: row 3, column 'item_id'" in msg and "'99'" in msg and "2 row(s)" in msg


@pytest.mark.parametrize(
    ("items", "expected"), [("", "items.csv: file is empty"), ("item_id,title\n", "no data rows")]
)
def test_empty_files(tmp_path: Path, items: str, expected: str) -> None:
    assert expected in error_for(tmp_path, items, INTERACTIONS)


def test_empty_interactions_file(tmp_path: Path) -> None:
    assert "inter.csv: no data rows" in error_for(tmp_path, ITEMS, "user_id,item_id\n")


def test_existing_dataset_survives_failed_reingest(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    dest = tmp_path / "ds"
    first = ingest(*files, dest, name="good")
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    bad = write(tmp_path / "bad.csv", "user_id,item_id,rating\nu,1,oops\n")
    with pytest.raises(IngestError, match="bad.csv: row 2"):
        ingest(files[0], bad, dest, name="bad")
    with pytest.raises(IngestError, match="checksum"):
        ingest(*files, dest, name="bad", expected_sha256="0" * 64)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert read_meta(dest) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "ds", "inter.csv", "items.csv"]


def test_successful_reingest_replaces(files: tuple[Path, Path], tmp_path: Path) -> None:
    ingest(*files, tmp_path / "ds", name="one")
    ingest(files[0], write(tmp_path / "x.csv", "user_id,item_id\nz,3\n"), tmp_path / "ds", "two")
    assert read_meta(tmp_path / "ds").name == "two"
    assert pd.read_parquet(tmp_path / "ds" / "interactions.parquet")["user_id"].tolist() == ["z"]


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    dest = tmp_path / "precious"
    dest.mkdir()
    write(dest / "notes.txt", "keep me")
    with pytest.raises(IngestError, match="refusing"):
        ingest(*files, dest, name="t")
    assert (dest / "notes.txt").read_text() == "keep me"


def test_binary_file_is_refused(tmp_path: Path) -> None:
    x = tmp_path / "items.xlsx"
    x.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00")
    with pytest.raises(IngestError, match=r"items.xlsx: binary content \('\.xlsx' file\)"):
        ingest(x, x, tmp_path / "ds", name="t")


@pytest.mark.parametrize(
    ("suffix", "sep"), [(".dat", "::"), (".txt", ";"), ("", "|"), (".dat", "\t")]
)
def test_any_extension_and_delimiter_is_sniffed(tmp_path: Path, suffix: str, sep: str) -> None:
    items = write(tmp_path / f"items{suffix}", f"item_id{sep}title\n1{sep}A\n2{sep}B\n")
    inter = write(
        tmp_path / f"ratings{suffix}",
        f"user_id{sep}item_id{sep}rating\nu{sep}1{sep}5\nu{sep}2{sep}3\nv{sep}1{sep}4\n",
    )
    meta = ingest(items, inter, tmp_path / "ds", name="t")
    assert (meta.n_items, meta.n_users, meta.n_interactions) == (2, 2, 3)
    cat = Catalogue.load(tmp_path / "ds")
    assert cat.get("2").title == "B"


def test_an_explicit_delimiter_wins_and_an_unclear_one_is_refused(tmp_path: Path) -> None:
    items = write(tmp_path / "items.csv", "item_id;title\n1;A, the first\n2;B\n")
    inter = write(tmp_path / "inter.csv", "user_id;item_id\nu;1\nv;2\n")
    meta = ingest(items, inter, tmp_path / "ds", name="t", delimiter=";")
    assert meta.n_items == 2 and Catalogue.load(tmp_path / "ds").get("1").title == "A, the first"
    odd = write(tmp_path / "odd.dat", "a,b;c\n1;2,3,4\n5,6\n")
    with pytest.raises(IngestError, match="cannot tell the field delimiter.*--delimiter"):
        ingest(odd, inter, tmp_path / "ds2", name="t")


def test_each_file_has_its_own_column_map(tmp_path: Path) -> None:
    items = write(tmp_path / "items.csv", "id,name\n1,A\n2,B\n")
    inter = write(tmp_path / "plays.csv", "listener,track\nu,1\nu,2\nv,2\n")
    meta = ingest(
        items,
        inter,
        tmp_path / "ds",
        name="music",
        item_columns={"item_id": "id", "title": "name"},
        interaction_columns={"user_id": "listener", "item_id": "track"},
        item_noun="Track",
    )
    assert meta.n_interactions == 3 and meta.item_noun == "track"
    assert meta.liked is not None and meta.liked.kind == "any"  # implicit: no ratings
    with pytest.raises(IngestError, match="unknown canonical column.*items column map: user_id"):
        ingest(items, inter, tmp_path / "ds3", name="m", item_columns={"user_id": "x"})


def test_item_text_joins_by_id_at_ingest_and_later(tmp_path: Path) -> None:
    items = write(tmp_path / "items.csv", "item_id,title,text\n1,A,old\n2,B,\n3,C,keep\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id\nu,1\nu,2\n")
    text = write(tmp_path / "text.csv", 'item_id,summary\n1,"new, longer"\n2,b text\n9,ghost\n')
    meta = ingest(
        items, inter, tmp_path / "ds", name="t", item_text=text, text_columns={"text": "summary"}
    )
    cat = Catalogue.load(tmp_path / "ds")
    assert [cat.get(i).text for i in ("1", "2", "3")] == ["new, longer", "b text", "keep"]
    assert meta.n_items_with_text == 3 and meta.item_text_source == str(text)
    later = write(tmp_path / "later.tsv", "item_id\ttext\n3\tfresh\n1\t\n")
    before = (tmp_path / "ds" / "interactions.parquet").read_bytes()
    counts = add_item_text(tmp_path / "ds", later)
    assert counts == {"matched": 1, "unknown": 0, "empty": 1, "items_with_text": 3}
    assert Catalogue.load(tmp_path / "ds").get("3").text == "fresh"
    assert (tmp_path / "ds" / "interactions.parquet").read_bytes() == before  # untouched
    assert read_meta(tmp_path / "ds").item_text_source == str(later)


def test_item_text_that_matches_nothing_changes_nothing(tmp_path: Path) -> None:
    items = write(tmp_path / "items.csv", "item_id,title\n1,A\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id\nu,1\n")
    ingest(items, inter, tmp_path / "ds", name="t")
    before = (tmp_path / "ds" / "items.parquet").read_bytes()
    bad = write(tmp_path / "text.csv", "item_id,text\n7,x\n")
    with pytest.raises(IngestError, match="no row matches an item"):
        add_item_text(tmp_path / "ds", bad)
    dup = write(tmp_path / "dup.csv", "item_id,text\n1,x\n1,y\n")
    with pytest.raises(IngestError, match="duplicate item_id '1'"):
        add_item_text(tmp_path / "ds", dup)
    assert (tmp_path / "ds" / "items.parquet").read_bytes() == before


def test_read_meta_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="meta.json"):
        read_meta(tmp_path)
