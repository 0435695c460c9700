"""A music-like implicit catalogue for the no-LLM eval benchmark, derived from real ratings.

Issue 12 measured ``recpilot eval --no-llm`` on a public music dataset (Last.fm-like:
about 1.9k users, each with their ~50 top artists and a play count per artist, no
timestamps, each user's rows listed by ascending item id) at 35 minutes. That file is not
in this project's shared data, so :func:`build_music_like` derives a catalogue of the
same shape from MovieLens latest-small (real titles, genres and co-rating structure):

- **items**: the ``n_items`` most-rated movies (ties by movie id), with their titles and
  ``|``-separated genres;
- **users**: ``n_users`` listeners; listener ``k`` is a copy of real user
  ``k mod n_real`` (users in a seeded random order) holding a seeded sample of up to
  ``per_user`` of that user's rated items among the kept ones, drawn with weight
  ``2 ** rating`` (a listener's top artists are the ones they like most); so the
  item popularity is the real, long-tailed one and co-occurrence is real taste;
- **counts**: a seeded log-normal "play count" per row whose median grows with the
  rating (``exp(N(log 60 + 0.8 (rating - 3.5), 1.0))``, at least 1), the shape of
  play counts;
- **files**: ``items.csv`` (``item_id,title,categories``) and ``interactions.csv``
  (``user_id,item_id,rating`` — the count in the rating column, no timestamp column),
  each user's rows by ascending item id, as in the music file.

It is read by the normal ``recpilot data ingest`` (``--liked top-share:0.5``), so the
evaluation sees a timestamp-less dataset and holds out a seeded random item per user.
It is for timing only: the ~3 copies of one real user share items, so a held-out item
is often in a sibling's history and the metrics on it are inflated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

N_ITEMS = 2800
N_USERS = 1900
PER_USER = 50


def build_music_like(
    source: Path,
    out_dir: Path,
    n_items: int = N_ITEMS,
    n_users: int = N_USERS,
    per_user: int = PER_USER,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write the benchmark catalogue (see the module docstring) into ``out_dir``.

    Args:
        source: a MovieLens latest-small folder (``movies.csv``, ``ratings.csv``).
        out_dir: where ``items.csv`` and ``interactions.csv`` are written (created).
        n_items: items kept (the most rated).
        n_users: listeners generated.
        per_user: at most this many items per listener.
        seed: seed of the user order, the item samples and the counts.

    Returns:
        ``(items_path, interactions_path)``.

    Raises:
        FileNotFoundError: ``source`` lacks ``movies.csv`` or ``ratings.csv``.
        ValueError: a size is below 1.
    """
    if min(n_items, n_users, per_user) < 1:
        raise ValueError(f"sizes must be >= 1 (items {n_items}, users {n_users}, {per_user})")
    for name in ("movies.csv", "ratings.csv"):
        if not (Path(source) / name).is_file():
            raise FileNotFoundError(f"{source} has no {name} (a MovieLens latest-small folder)")
    movies = pd.read_csv(Path(source) / "movies.csv")
    ratings = pd.read_csv(Path(source) / "ratings.csv", usecols=["userId", "movieId", "rating"])
    counts = ratings.groupby("movieId").size().reset_index(name="n")
    top = counts.sort_values(["n", "movieId"], ascending=[False, True]).head(n_items)
    kept = ratings[ratings["movieId"].isin(set(top["movieId"]))]
    rng = np.random.default_rng(seed)
    real_users = kept["userId"].unique()
    real_users = real_users[rng.permutation(len(real_users))]
    by_user = {u: g for u, g in kept.groupby("userId", sort=False)}
    rows: list[pd.DataFrame] = []
    for k in range(n_users):
        real = by_user[real_users[k % len(real_users)]]
        take = min(per_user, len(real))
        weight = np.exp2(real["rating"].to_numpy(dtype=float))
        pick = rng.choice(len(real), size=take, replace=False, p=weight / weight.sum())
        part = real.iloc[np.sort(pick)]
        plays = np.exp(rng.normal(np.log(60) + 0.8 * (part["rating"].to_numpy() - 3.5), 1.0))
        rows.append(
            pd.DataFrame({
                "user_id": f"u{k + 1}",
                "item_id": part["movieId"].to_numpy(),
                "rating": np.maximum(1, np.rint(plays)).astype(int),
            })  # fmt: skip
        )
    inter = pd.concat(rows, ignore_index=True).sort_values(["user_id", "item_id"], kind="stable")
    used = movies[movies["movieId"].isin(set(top["movieId"]))].sort_values("movieId")
    items = pd.DataFrame({
        "item_id": used["movieId"], "title": used["title"], "categories": used["genres"],
    })  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items_path, inter_path = out_dir / "items.csv", out_dir / "interactions.csv"
    items.to_csv(items_path, index=False)
    inter.to_csv(inter_path, index=False)
    return items_path, inter_path
