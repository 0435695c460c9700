"""Leave-one-out (LOO) split by timestamp, k-core filtering, cold-start truncation, negatives.

Protocol (the one of BERT4Rec, Sun et al. CIKM 2019, kept by LRURec and LlamaRec, Yue et
al. 2023/2024, whose code this mirrors where it matters):

1. Duplicate ``(user, item)`` pairs are dropped, keeping the earliest interaction.
2. Iterative k-core filter: drop items with fewer than ``min_item`` interactions and users
   with fewer than ``min_user``, repeated until both hold (LlamaRec's ``filter_triplets``,
   ``min_uc = min_sc = 5``). The surviving items are the evaluation's *item universe*.
3. Each user's interactions are ordered by ``(timestamp, item id)`` — ties broken by item
   id (numeric when every id is a number), as LlamaRec's ``sort_values(['timestamp',
   'sid'])`` does. The last one is the **test** item, the one before it the
   **validation** item, the rest are training.
4. Phases. ``"valid"``: train on the training interactions, predict the validation item.
   ``"test"``: train on training + validation interactions, predict the test item (the
   validation item is then part of the user's history, as in LlamaRec's test loader).
   Neither phase ever trains on its own target, nor on any test item.

Nothing here knows a dataset's name: the same code runs on any canonical interactions
frame (``user_id``, ``item_id``, ``rating``, ``timestamp``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

Phase = Literal["valid", "test"]
Sampler = Literal["uniform", "popularity"]
PHASES: tuple[Phase, ...] = ("valid", "test")
SAMPLERS: tuple[Sampler, ...] = ("uniform", "popularity")


def _id_key(ids: pd.Series) -> pd.Series:
    """Sort key for ids: integers when every id is a decimal number, else the strings."""
    text = ids.astype(str)
    if text.str.fullmatch(r"\d+").all():
        return text.astype(np.int64)
    return text


def kcore_filter(interactions: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Drop sparse items and users until every item has ``min_item`` and every user ``min_user``.

    Args:
        interactions: frame with ``user_id`` and ``item_id`` columns (one row per pair).
        min_user: minimum interactions per user (>= 1).
        min_item: minimum interactions per item (>= 1).

    Returns:
        The surviving rows (same columns, original index).
    """
    df = interactions
    while True:
        before = len(df)
        if min_item > 1:
            counts = df.groupby("item_id")["user_id"].transform("size")
            df = df[counts >= min_item]
        if min_user > 1:
            counts = df.groupby("user_id")["item_id"].transform("size")
            df = df[counts >= min_user]
        if len(df) == before:
            return df


@dataclass
class LOOSplit:
    """A leave-one-out split of one dataset.

    Attributes:
        interactions: the filtered interactions, ordered by user then ``(timestamp, item
            id)``; column ``from_end`` is 0 for each user's test item, 1 for the
            validation item, >= 2 for training rows.
        universe: item ids that survive the filter (the items ranked), sorted.
        users: user ids with a split, sorted.
        min_user, min_item: the filter thresholds used.
        ties: fraction of users whose test item shares its timestamp with the validation
            item (so the id tie-break, not time, decided which one is the test item).
    """

    interactions: pd.DataFrame
    universe: list[str]
    users: list[str]
    min_user: int
    min_item: int
    ties: float
    _targets: dict[Phase, dict[str, str]] = field(default_factory=dict, repr=False)
    _items: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def train_frame(self, phase: Phase) -> pd.DataFrame:
        """Interactions a model may learn from in ``phase`` (``user_id``, ``item_id``, …).

        ``"valid"``: rows with ``from_end >= 2``; ``"test"``: ``from_end >= 1``.
        """
        cut = 2 if phase == "valid" else 1
        frame = self.interactions[self.interactions["from_end"] >= cut]
        return frame.drop(columns=["from_end"]).reset_index(drop=True)

    def targets(self, phase: Phase) -> dict[str, str]:
        """``{user_id: held-out item id}`` of ``phase`` (validation or test item)."""
        if phase not in self._targets:
            pos = 1 if phase == "valid" else 0
            rows = self.interactions[self.interactions["from_end"] == pos]
            self._targets[phase] = dict(zip(rows["user_id"], rows["item_id"], strict=True))
        return self._targets[phase]

    def user_items(self, user_id: str) -> set[str]:
        """Every item the user interacted with (all phases): never a sampled negative."""
        if not self._items:
            grouped = self.interactions.groupby("user_id")["item_id"]
            self._items = {u: set(items) for u, items in grouped}
        return self._items.get(user_id, set())


def leave_one_out(interactions: pd.DataFrame, min_user: int = 5, min_item: int = 5) -> LOOSplit:
    """Split each user's interactions: last = test, second last = validation, rest = train.

    Args:
        interactions: canonical frame, ``user_id``, ``item_id`` (str), ``rating``,
            ``timestamp`` (int, unix seconds or row order).
        min_user: minimum interactions per user after filtering (>= 3: one training
            interaction, one validation, one test). LlamaRec uses 5.
        min_item: minimum interactions per item (LlamaRec uses 5; 1 = no item filter).

    Returns:
        The :class:`LOOSplit` (see the module docstring for the rules).

    Raises:
        ValueError: ``min_user`` < 3 or ``min_item`` < 1, or no user survives.
    """
    if min_user < 3:
        raise ValueError(f"min_user must be >= 3 for a leave-one-out split, got {min_user}")
    if min_item < 1:
        raise ValueError(f"min_item must be >= 1, got {min_item}")
    df = interactions[["user_id", "item_id", "rating", "timestamp"]].copy()
    df["user_id"] = df["user_id"].astype(str)
    df["item_id"] = df["item_id"].astype(str)
    df["_ikey"] = _id_key(df["item_id"])
    df = df.sort_values(["user_id", "timestamp", "_ikey"], kind="stable")
    df = df.drop_duplicates(["user_id", "item_id"], keep="first")
    df = kcore_filter(df, min_user, min_item)
    if df.empty:
        raise ValueError(
            f"no user has {min_user} interactions on items with {min_item} interactions"
        )
    df = df.sort_values(["user_id", "timestamp", "_ikey"], kind="stable")
    df["from_end"] = df.groupby("user_id").cumcount(ascending=False)
    last = df[df["from_end"] == 0].set_index("user_id")["timestamp"]
    prev = df[df["from_end"] == 1].set_index("user_id")["timestamp"]
    ties = float((last == prev.reindex(last.index)).mean())
    df = df.drop(columns=["_ikey"]).reset_index(drop=True)
    universe = sorted(df["item_id"].unique().tolist(), key=lambda i: (len(i), i))
    return LOOSplit(
        interactions=df,
        universe=universe,
        users=sorted(df["user_id"].unique().tolist()),
        min_user=min_user,
        min_item=min_item,
        ties=round(ties, 4),
    )


def truncate_histories(train: pd.DataFrame, users: list[str], keep: int) -> pd.DataFrame:
    """Cold-start slice: keep only the first ``keep`` training interactions of ``users``.

    The other users' rows are untouched, so a model trained on the result still learns
    from everyone else.

    Args:
        train: a phase's training frame, ordered by user then time (as
            :meth:`LOOSplit.train_frame` returns it).
        users: the users to truncate.
        keep: interactions kept per truncated user (their oldest ones), >= 1.

    Returns:
        A new frame, same columns.

    Raises:
        ValueError: ``keep`` < 1.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    chosen = train["user_id"].isin(set(users))
    rank = train.groupby("user_id").cumcount()
    return train[~chosen | (rank < keep)].reset_index(drop=True)


def sample_users(users: list[str], n: int | None, seed: int) -> list[str]:
    """A seeded sample of ``n`` users (all of them when ``n`` is None or >= len), sorted.

    Args:
        users: candidate user ids.
        n: sample size.
        seed: numpy ``default_rng`` seed.

    Returns:
        The sampled ids, sorted like ``users``.
    """
    if n is None or n >= len(users):
        return list(users)
    rng = np.random.default_rng(seed)
    picked = set(rng.choice(len(users), size=n, replace=False).tolist())
    return [u for k, u in enumerate(users) if k in picked]


def user_seed(seed: int, user_id: str, salt: str) -> np.random.Generator:
    """A generator seeded by ``(seed, crc32(user_id), crc32(salt))``: stable across runs,
    user orders and processes (Python's ``hash`` of a str is salted per process)."""
    return np.random.default_rng(
        [seed, zlib.crc32(user_id.encode("utf-8")), zlib.crc32(salt.encode("utf-8"))]
    )


def sample_negatives(
    universe: list[str],
    exclude: set[str],
    n: int,
    method: Sampler,
    seed: int,
    user_id: str,
    popularity: dict[str, float] | None = None,
) -> list[str]:
    """Draw ``n`` negative items for one user, without replacement.

    Sampled-metric protocol of He et al. (WWW 2017, NCF) and Sun et al. (CIKM 2019,
    BERT4Rec: popularity-sampled); see Krichene & Rendle (KDD 2020), "On Sampled Metrics
    for Item Recommendation", for why sampled numbers do not rank models like full
    ranking does — full ranking is the headline protocol here.

    Args:
        universe: item ids that may be drawn.
        exclude: the user's own items (every phase): never drawn.
        n: negatives to draw (fewer if fewer items are eligible).
        method: ``"uniform"`` (each eligible item equally likely) or ``"popularity"``
            (probability proportional to the item's training interaction count; items
            with count 0 are drawn uniformly only if too few have count > 0).
        seed: global seed; the draw is seeded per user and method (:func:`user_seed`).
        user_id: the user (part of the seed).
        popularity: ``{item_id: count}``, required for ``"popularity"``.

    Returns:
        The negative item ids, in draw order.

    Raises:
        ValueError: unknown ``method``, or ``"popularity"`` without ``popularity``.
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; known: {', '.join(SAMPLERS)}")
    pool = np.array([i for i in universe if i not in exclude], dtype=object)
    rng = user_seed(seed, user_id, method)
    if len(pool) <= n:
        return pool.tolist()
    if method == "uniform":
        return pool[rng.choice(len(pool), size=n, replace=False)].tolist()
    if popularity is None:
        raise ValueError("popularity sampling needs the item popularity counts")
    weight = np.array([float(popularity.get(i, 0.0)) for i in pool])
    positive = np.flatnonzero(weight > 0)
    if len(positive) >= n:
        picked = rng.choice(positive, size=n, replace=False, p=weight[positive] / weight.sum())
        return pool[picked].tolist()
    rest = np.setdiff1d(np.arange(len(pool)), positive)
    extra = rng.choice(rest, size=n - len(positive), replace=False)
    return pool[np.concatenate([rng.permutation(positive), extra])].tolist()
