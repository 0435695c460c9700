"""Ingest a user's items and interactions files into recpilot's canonical dataset format.

Canonical dataset folder (what :func:`ingest` writes):

* ``items.parquet``: ``item_id`` str, ``title`` str, ``text`` str, ``categories``
  list<str>, ``year`` int64 (nullable), then any extra item columns as strings.
* ``interactions.parquet``: ``user_id`` str, ``item_id`` str, ``rating`` float64,
  ``timestamp`` int64 (unix seconds, or row order when the file has none).
* ``meta.json``: a :class:`DatasetMeta`.

Row numbers in error messages are the rows a user sees: in CSV/TSV the header is row 1
and the first data row is row 2 (a quoted field spanning lines counts as one row); in
Parquet the first record is row 1.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recpilot.data.meta import DatasetMeta, LikedRule, read_meta

__all__ = [
    "DatasetMeta",
    "IngestError",
    "add_item_text",
    "ingest",
    "interactions_sha256",
    "join_item_text",
    "read_meta",
    "sniff_delimiter",
]

ITEM_COLUMNS = {"item_id": True, "title": True, "text": False, "categories": False, "year": False}
INTERACTION_COLUMNS = {"user_id": True, "item_id": True, "rating": False, "timestamp": False}
_TITLE_YEAR = r"^(?P<title>.*\S)\s*\((?P<year>\d{4})\)$"
_INTERACTIONS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("rating", pa.float64()),
        ("timestamp", pa.int64()),
    ]
)


class IngestError(ValueError):
    """A file cannot be ingested; the message names the file, row and column."""


def ingest(
    items_path: Path,
    interactions_path: Path,
    dest_dir: Path,
    name: str,
    columns: dict[str, str] | None = None,
    category_sep: str = "|",
    encoding: str = "utf-8",
    source: str = "local",
    expected_sha256: str | None = None,
    *,
    item_columns: dict[str, str] | None = None,
    interaction_columns: dict[str, str] | None = None,
    delimiter: str | None = None,
    item_text: Path | None = None,
    text_columns: dict[str, str] | None = None,
    item_noun: str = "item",
    liked: LikedRule | None = None,
) -> DatasetMeta:
    """Validate two files and write them as a canonical dataset into ``dest_dir``.

    Args:
        items_path: delimited text (any extension; see ``delimiter``) or ``.parquet``
            with ``item_id`` and ``title``;
            optional ``text``, ``categories`` (``category_sep``-separated), ``year`` (int;
            if the column is absent, a title ending in ``(YYYY)`` gives the year and loses
            the suffix); other columns are kept as string attributes.
        interactions_path: same formats, with ``user_id``, ``item_id``; optional ``rating``
            (float, default 1.0 = implicit) and ``timestamp`` (int unix seconds, default
            the row order 0, 1, ...); other columns are dropped. Every item_id must be
            in the items file.
        dest_dir: dataset folder to create or replace (only if it is empty or a dataset).
        name: dataset name stored in the meta.
        columns: canonical name → the files' column name, e.g. ``{"item_id": "movieId"}``,
            for both files; a canonical name already present in a file is used when the
            mapped one is not.
        item_columns, interaction_columns: the same for one file only (they win over
            ``columns``), for files that name their id columns differently.
        delimiter: field separator of delimited text (any string, e.g. ``"::"``); None =
            ``,`` for ``.csv``, tab for ``.tsv``, else sniffed from the file's first lines
            (``,``, tab, ``;``, ``|``, ``::``).
        item_text: optional file with ``item_id`` and ``text`` (any format above) whose
            text replaces the items' text (see :func:`join_item_text`).
        text_columns: column map of the ``item_text`` file.
        item_noun: what one item is called in prompts and replies (``movie``, ``song``).
        liked: what counts as liked (None: from the ratings, see
            :meth:`LikedRule.from_ratings`; ``top_share`` for play counts in ``rating``).
        category_sep: separator inside the categories column.
        encoding: text encoding of CSV/TSV files.
        source: provenance stored in the meta.
        expected_sha256: if given, the interactions checksum must equal it.

    Returns:
        The :class:`DatasetMeta` written to ``dest_dir/meta.json``.

    Raises:
        IngestError: any bad input; nothing in ``dest_dir`` has been changed.
    """
    dest_dir = Path(dest_dir)
    columns = dict(columns or {})
    _check_map(columns, {**ITEM_COLUMNS, **INTERACTION_COLUMNS}, "the column map")
    _check_map(item_columns or {}, ITEM_COLUMNS, "the items column map")
    _check_map(interaction_columns or {}, INTERACTION_COLUMNS, "the interactions column map")
    noun = item_noun.strip().lower()
    if not noun or len(noun) > 30:
        raise IngestError(f"item noun {item_noun!r}: give one short word, e.g. movie or song")
    _check_replaceable(dest_dir)
    item_map = {**columns, **(item_columns or {})}
    items = _build_items(Path(items_path), item_map, category_sep, encoding, delimiter)
    text_source = None
    if item_text is not None:
        text_map = {**(text_columns or {})}
        if "item_id" not in text_map and "item_id" in item_map:
            text_map["item_id"] = item_map["item_id"]
        items, _ = join_item_text(items, Path(item_text), text_map, encoding, delimiter)
        text_source = str(item_text)
    inter = _build_interactions(
        Path(interactions_path),
        {**columns, **(interaction_columns or {})},
        encoding,
        set(items["item_id"]),
        delimiter,
    )
    digest = interactions_sha256(inter)
    if expected_sha256 is not None and digest != expected_sha256:
        raise IngestError(
            f"{interactions_path}: interactions checksum {digest} != expected {expected_sha256}"
        )
    meta = DatasetMeta(
        name=name,
        source=source,
        created_at=datetime.now(UTC),
        n_items=len(items),
        n_users=int(inter["user_id"].nunique()),
        n_interactions=len(inter),
        interactions_sha256=digest,
        liked=liked or LikedRule.from_ratings(inter["rating"]),
        item_noun=noun,
        item_text_source=text_source,
        n_items_with_text=int((items["text"].str.strip() != "").sum()),
    )
    _write_atomically(dest_dir, items, inter, meta)
    return meta


def _check_map(columns: dict[str, str], allowed: dict[str, bool], what: str) -> None:
    unknown = sorted(set(columns) - set(allowed))
    if unknown:
        raise IngestError(
            f"unknown canonical column(s) in {what}: {', '.join(unknown)}; "
            f"known: {', '.join(allowed)}"
        )


TEXT_COLUMNS = {"item_id": True, "text": True}


def join_item_text(
    items: pd.DataFrame,
    path: Path,
    columns: dict[str, str] | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Replace the items' ``text`` with a text file's, keyed by item id.

    Args:
        items: canonical items (``item_id``, ``text``, …).
        path: a file with ``item_id`` and ``text`` columns (other columns ignored), in
            any format :func:`ingest` reads; empty text cells are skipped.
        columns: canonical → file column names (``{"text": "summary"}``).
        encoding, delimiter: as in :func:`ingest`.

    Returns:
        ``(items with the new text, counts)``; counts: ``matched`` (items given text),
        ``unknown`` (file rows whose id is not in the catalogue, ignored), ``empty``
        (rows with empty text), ``items_with_text`` (after the join).

    Raises:
        IngestError: the file is unreadable, lacks a column, has duplicate ids, or
            matches no item at all.
    """
    _check_map(columns or {}, TEXT_COLUMNS, "the item-text column map")
    df = _read_table(path, encoding, delimiter)
    cols = _resolve(df, path, TEXT_COLUMNS, columns or {})
    ids = _ids(df, path, cols["item_id"], "item_id")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        rows = dup.index[dup == dup.iloc[0]][:2]
        raise IngestError(
            f"{_label(path, rows[1], cols['item_id'], 'item_id')}: duplicate item_id "
            f"{dup.iloc[0]!r}, also in row {rows[0]}"
        )
    texts = _strings(df[cols["text"]])
    known = ids.isin(set(items["item_id"]))
    usable = known & (texts != "")
    if not usable.any():
        raise IngestError(
            f"{path}: no row matches an item of the catalogue with a non-empty text "
            f"({len(ids)} rows; first id {ids.iloc[0]!r}); check the item_id column"
        )
    new_text = dict(zip(ids[usable], texts[usable], strict=True))
    out = items.copy()
    out["text"] = [new_text.get(i, t) for i, t in zip(out["item_id"], out["text"], strict=True)]
    counts = {
        "matched": len(new_text),
        "unknown": int((~known).sum()),
        "empty": int((known & (texts == "")).sum()),
        "items_with_text": int((out["text"].str.strip() != "").sum()),
    }
    return out, counts


def add_item_text(
    dataset_dir: Path,
    path: Path,
    columns: dict[str, str] | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> dict[str, int]:
    """Join a text file into an existing dataset's items (``recpilot data add-text``).

    ``items.parquet`` and ``meta.json`` are rewritten atomically (interactions are kept
    as they are); the item index must then be rebuilt (``recpilot index``).

    Returns:
        The counts of :func:`join_item_text`.

    Raises:
        IngestError: no dataset in ``dataset_dir``, or the file cannot be joined.
    """
    dataset_dir = Path(dataset_dir)
    if not (dataset_dir / "meta.json").is_file():
        raise IngestError(
            f"{dataset_dir}: no dataset; fetch or ingest one first (`recpilot data fetch "
            "movielens-100k` or `recpilot data ingest`)"
        )
    meta = read_meta(dataset_dir)
    items = pd.read_parquet(dataset_dir / "items.parquet")
    items["text"] = items["text"].fillna("")
    items, counts = join_item_text(items, Path(path), columns, encoding, delimiter)
    meta = meta.model_copy(update={
        "item_text_source": str(path), "n_items_with_text": counts["items_with_text"]
    })  # fmt: skip
    tmp = dataset_dir / ".items.parquet.tmp"
    pq.write_table(_items_table(items), tmp)
    meta_tmp = dataset_dir / ".meta.json.tmp"
    meta_tmp.write_text(meta.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, dataset_dir / "items.parquet")
    os.replace(meta_tmp, dataset_dir / "meta.json")
    return counts


def interactions_sha256(inter: pd.DataFrame) -> str:
    """Checksum of canonical interactions, independent of row order and file format.

    Rows are sorted by (user, item, timestamp, rating), ids compared as integers when
    every id in that column is a decimal number, else as strings; each row is written
    ``f"{user}\\t{item}\\t{rating:g}\\t{timestamp}"`` and rows are joined by ``"\\n"``.

    Args:
        inter: frame with ``user_id``, ``item_id`` (str), ``rating``, ``timestamp``.

    Returns:
        64-character hex sha256.
    """
    keys = pd.DataFrame({c: _sort_key(inter[c]) for c in ("user_id", "item_id")})
    keys["timestamp"], keys["rating"] = inter["timestamp"].to_numpy(), inter["rating"].to_numpy()
    order = keys.sort_values(["user_id", "item_id", "timestamp", "rating"], kind="stable").index
    rows = inter.loc[order]
    lines = [
        f"{u}\t{i}\t{r:g}\t{t}"
        for u, i, r, t in zip(
            rows["user_id"], rows["item_id"], rows["rating"], rows["timestamp"], strict=True
        )
    ]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


# -- reading ------------------------------------------------------------------------------


def _read_table(path: Path, encoding: str, delimiter: str | None = None) -> pd.DataFrame:
    """Read a file into a frame indexed by the user-visible row number (text cells as str).

    ``.parquet`` is read as Parquet; anything else as delimited text with ``delimiter``
    (None: ``,`` for ``.csv``, tab for ``.tsv``, else sniffed by :func:`sniff_delimiter`).
    """
    if not path.is_file():
        raise IngestError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            df = pq.read_table(path).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(f"{path}: not a readable Parquet file: {exc}") from exc
        df.index = pd.RangeIndex(1, len(df) + 1)
    else:
        if delimiter == "":
            raise IngestError("the delimiter is empty; pass e.g. --delimiter ';'")
        with path.open("rb") as fh:
            if b"\x00" in fh.read(8192):
                kind = f"{suffix!r} file" if suffix else "file"
                raise IngestError(
                    f"{path}: binary content ({kind}), not delimited text; save it as CSV, "
                    "TSV or Parquet"
                )
        sep = delimiter or {".csv": ",", ".tsv": "\t"}.get(suffix) or sniff_delimiter(path)
        df = _read_text(path, sep, encoding)
        df.index = pd.RangeIndex(2, len(df) + 2)
        df = df[(df != "").any(axis=1)]  # blank lines, kept out of the row count above
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise IngestError(f"{path}: no data rows (columns: {', '.join(df.columns) or 'none'})")
    return df


SNIFFED = ("::", "\t", ",", ";", "|")  # delimiters :func:`sniff_delimiter` recognises


def sniff_delimiter(path: Path, sample_bytes: int = 65_536) -> str:
    """The field delimiter of a delimited text file, from its first lines.

    ``::`` (MovieLens 1M's ``.dat``) when the header has it, else the single character
    among tab, ``,``, ``;``, ``|`` that :class:`csv.Sniffer` finds consistent.

    Raises:
        IngestError: no consistent delimiter; the message says how to pass one.
    """
    head = path.read_bytes()[:sample_bytes].decode("utf-8", errors="replace")
    lines = [line for line in head.splitlines() if line.strip()][:50]
    if len(lines) > 1 and lines[0].count("::") and lines[0].count("::") == lines[1].count("::"):
        return "::"
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="\t,;|").delimiter
    except csv.Error:
        if len(lines) and all(c not in lines[0] for c in "\t,;|"):
            return ","  # one column: any delimiter reads it
        raise IngestError(
            f"{path}: cannot tell the field delimiter (tried tab , ; | ::); pass it, e.g. "
            "--delimiter ';'"
        ) from None


def _read_text(path: Path, sep: str, encoding: str) -> pd.DataFrame:
    """Decode (reporting the row and column of a bad byte) and parse a CSV/TSV file."""
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except LookupError as exc:
        raise IngestError(f"unknown encoding {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        row = raw.count(b"\n", 0, exc.start) + 1
        raise IngestError(
            f"{path}: row {row}{_column_at(raw, exc.start, sep, encoding)}: byte "
            f"{raw[exc.start : exc.start + 1]!r} is not valid {encoding}; if the file uses "
            "another encoding, pass it, e.g. --encoding latin-1"
        ) from exc
    try:
        body = text.removeprefix("\ufeff")
        if len(sep) > 1:  # a multi-character separator (``::``): one the C parser reads
            body = body.replace(sep, "\x1f")
        return pd.read_csv(
            io.StringIO(body),
            sep=sep if len(sep) == 1 else "\x1f",
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        kind = {"\t": "TSV", ",": "CSV"}.get(sep, f"text delimited by {sep!r}")
        raise IngestError(f"{path}: cannot parse as {kind}: {exc}") from exc


def _column_at(raw: bytes, pos: int, sep: str, encoding: str) -> str:
    """``", column 'x'"`` for the field holding byte ``pos``, or ``""`` if in the header."""
    start = raw.rfind(b"\n", 0, pos) + 1
    if start == 0 or len(sep) != 1:
        return ""
    header_line = raw[: raw.find(b"\n")].decode(encoding, errors="replace")
    header = next(csv.reader([header_line], delimiter=sep))
    prefix = raw[start:pos].decode(encoding, errors="replace") + "x"
    index = len(next(csv.reader([prefix], delimiter=sep))) - 1
    return f", column '{header[index].strip()}'" if index < len(header) else ""


def _resolve(
    df: pd.DataFrame, path: Path, wanted: dict[str, bool], columns: dict[str, str]
) -> dict[str, str]:
    """Map each canonical column that the file has to the file's column name."""
    found: dict[str, str] = {}
    for canonical, required in wanted.items():
        mapped = columns.get(canonical, canonical)
        if mapped in df.columns:
            found[canonical] = mapped
        elif canonical in df.columns:
            found[canonical] = canonical
        elif required or canonical in columns:
            raise IngestError(
                f"{path}: missing column '{mapped}' ({canonical}); columns present: "
                f"{', '.join(map(str, df.columns))}. Map names with --column {canonical}=<yours> "
                f"(CLI) or columns={{...}} (Python)"
            )
    return found


def _label(path: Path, row: object, column: str, canonical: str) -> str:
    named = f"'{column}'" if column == canonical else f"'{column}' ({canonical})"
    return f"{path}: row {row}, column {named}"


# -- validation ---------------------------------------------------------------------------


def _strings(s: pd.Series) -> pd.Series:
    """Cell values as stripped str; missing values become ``""``."""
    if pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
        return s.astype("int64").astype(str)
    return pd.Series([_cell_str(v) for v in s], index=s.index, dtype=object)


def _cell_str(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value).strip()


def _ids(df: pd.DataFrame, path: Path, col: str, canonical: str) -> pd.Series:
    ids = _strings(df[col])
    empty = ids == ""
    if empty.any():
        raise IngestError(f"{_label(path, empty.idxmax(), col, canonical)}: empty {canonical}")
    return ids


def _numbers(
    df: pd.DataFrame, path: Path, col: str, canonical: str, integer: bool, allow_empty: bool
) -> pd.Series:
    """Parse a numeric column, raising on the first empty/non-numeric/non-integer cell."""
    cells = df[col]
    if pd.api.types.is_datetime64_any_dtype(cells.dtype):
        cells = cells.astype("datetime64[s]").astype("int64")
    text = _strings(cells) if not pd.api.types.is_numeric_dtype(cells.dtype) else None
    values = pd.to_numeric(cells if text is None else text, errors="coerce").astype("float64")
    bad = ~np.isfinite(values)
    if integer:
        bad |= np.isfinite(values) & (values % 1 != 0)
    if allow_empty:
        bad &= (text != "") if text is not None else cells.notna()
    if bad.any():
        row = bad.idxmax()
        shown = cells[row] if text is None else text[row]
        problem = "is empty" if shown == "" else f"is {shown!r}"
        kind = "an integer" if integer else "a number"
        raise IngestError(
            f"{_label(path, row, col, canonical)}: {canonical} {problem}, expected {kind}"
        )
    return values


def _build_items(
    path: Path, columns: dict[str, str], sep: str, encoding: str, delimiter: str | None = None
) -> pd.DataFrame:
    df = _read_table(path, encoding, delimiter)
    cols = _resolve(df, path, ITEM_COLUMNS, columns)
    ids = _ids(df, path, cols["item_id"], "item_id")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        rows = dup.index[dup == dup.iloc[0]][:2]
        raise IngestError(
            f"{_label(path, rows[1], cols['item_id'], 'item_id')}: duplicate item_id "
            f"{dup.iloc[0]!r}, also in row {rows[0]}"
        )
    titles = _strings(df[cols["title"]])
    if (titles == "").any():
        row = (titles == "").idxmax()
        raise IngestError(f"{_label(path, row, cols['title'], 'title')}: empty title")
    if "year" in cols:
        years = _numbers(df, path, cols["year"], "year", integer=True, allow_empty=True)
    else:
        parts = titles.str.extract(_TITLE_YEAR)
        has_year = parts["year"].notna()
        titles = titles.where(~has_year, parts["title"])
        years = pd.to_numeric(parts["year"]).astype("float64")
    out = pd.DataFrame(
        {
            "item_id": ids,
            "title": titles,
            "text": _strings(df[cols["text"]]) if "text" in cols else "",
            "categories": _categories(df[cols["categories"]], sep)
            if "categories" in cols
            else [[] for _ in range(len(df))],
            "year": pd.array([None if np.isnan(y) else int(y) for y in years], dtype="Int64"),
        },
        index=df.index,
    )
    for extra in (c for c in df.columns if c not in cols.values()):
        if extra in ITEM_COLUMNS:
            raise IngestError(f"{path}: column '{extra}' clashes with the column mapped to it")
        out[extra] = _strings(df[extra])
    return out.reset_index(drop=True)


def _categories(cells: pd.Series, sep: str) -> list[list[str]]:
    """Split each cell (a string, or already a list in Parquet) into unique names."""
    result = []
    for cell in cells:
        if isinstance(cell, str):
            names = cell.split(sep)
        elif cell is None or (isinstance(cell, float) and np.isnan(cell)):
            names = []
        else:
            names = [str(name) for name in cell]
        result.append(list(dict.fromkeys(n.strip() for n in names if n and n.strip())))
    return result


def _build_interactions(
    path: Path,
    columns: dict[str, str],
    encoding: str,
    item_ids: set[str],
    delimiter: str | None = None,
) -> pd.DataFrame:
    df = _read_table(path, encoding, delimiter)
    cols = _resolve(df, path, INTERACTION_COLUMNS, columns)
    users = _ids(df, path, cols["user_id"], "user_id")
    items = _ids(df, path, cols["item_id"], "item_id")
    unknown = ~items.isin(item_ids)
    if unknown.any():
        row = unknown.idxmax()
        raise IngestError(
            f"{_label(path, row, cols['item_id'], 'item_id')}: item {items[row]!r} is not in "
            f"the items file ({int(unknown.sum())} row(s) affected)"
        )
    if "rating" in cols:
        ratings = _numbers(df, path, cols["rating"], "rating", integer=False, allow_empty=False)
    else:
        ratings = pd.Series(1.0, index=df.index)
    if "timestamp" in cols:
        times = _numbers(df, path, cols["timestamp"], "timestamp", integer=True, allow_empty=False)
    else:
        times = pd.Series(np.arange(len(df)), index=df.index)
    return pd.DataFrame(
        {
            "user_id": users.to_numpy(dtype=object),
            "item_id": items.to_numpy(dtype=object),
            "rating": ratings.to_numpy(dtype="float64"),
            "timestamp": times.to_numpy(dtype="int64"),
        }
    )


def _sort_key(ids: pd.Series) -> pd.Series:
    """Ids as int64 when every one is a short decimal number, else the strings."""
    as_str = ids.astype(str)
    if as_str.str.fullmatch(r"\d{1,18}").all():
        return as_str.astype("int64")
    return as_str


# -- writing ------------------------------------------------------------------------------


def _check_replaceable(dest_dir: Path) -> None:
    if dest_dir.exists() and not dest_dir.is_dir():
        raise IngestError(f"{dest_dir}: exists and is not a folder")
    if dest_dir.is_dir() and any(dest_dir.iterdir()) and not (dest_dir / "meta.json").exists():
        raise IngestError(
            f"{dest_dir}: folder is not empty and holds no dataset (no meta.json); "
            "refusing to replace it"
        )


def _write_atomically(
    dest_dir: Path, items: pd.DataFrame, inter: pd.DataFrame, meta: DatasetMeta
) -> None:
    """Write into a temporary sibling folder, then swap it in place of ``dest_dir``."""
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".tmp", dir=dest_dir.parent))
    try:
        pq.write_table(_items_table(items), tmp / "items.parquet")
        pq.write_table(
            pa.Table.from_pandas(inter, schema=_INTERACTIONS_SCHEMA, preserve_index=False),
            tmp / "interactions.parquet",
        )
        (tmp / "meta.json").write_text(meta.model_dump_json(indent=2) + "\n", encoding="utf-8")
        if dest_dir.exists():
            old = dest_dir.with_name(f".{dest_dir.name}.old-{uuid.uuid4().hex[:8]}")
            dest_dir.rename(old)
            try:
                tmp.rename(dest_dir)
            except BaseException:
                old.rename(dest_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _items_table(items: pd.DataFrame) -> pa.Table:
    """Items as Arrow with explicit types (and pandas metadata so ``year`` reads as Int64)."""
    fields = [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("year", pa.int64()),
    ]
    fields += [(extra, pa.string()) for extra in items.columns[len(fields) :]]
    return pa.Table.from_pandas(items, schema=pa.schema(fields), preserve_index=False)
