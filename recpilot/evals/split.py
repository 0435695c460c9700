"""Leave-one-out (LOO) split by timestamp, k-core filtering, cold-start truncation, negatives.

Protocol (the one of BERT4Rec, Sun et al. CIKM 2019, kept by LRURec and LlamaRec, Yue et
al. 2023/2024, whose code this mirrors where it matters):

1. Duplicate ``(user, item)`` pairs are dropped, keeping the earliest interaction.
2. Iterative k-core filter: drop items with fewer than ``min_item`` interactions and users
   with fewer than ``min_user``, repeated until both hold (LlamaRec's ``filter_triplets``,
   ``min_uc = min_sc = 5``). The surviving items are the evaluation's *item universe*.
3. Each user's interactions are ordered by ``(timestamp, seeded random key)``: ties
   (several interactions in the same second) are broken by a per-``(user, item)`` key
   drawn from the seed (:func:`tie_keys`), not by item id. LlamaRec sorts by
   ``['timestamp', 'sid']``; on ML-100K, where 44% of users rated their test and
   validation items in the same second, the id rule systematically held out the higher
   id (there the more obscure film) and lowered every pipeline's score. The last one is
   the **test** item, the one before it the **validation** item, the rest are training.
   A dataset without real timestamps (all equal, or the ingest's row-order default
   ``0..n-1`` because the file had no timestamp column) is not ordered by them unless
   asked: ``order="auto"`` then holds out a seeded random item per user instead
   (``order="random"``), and the split says so (:attr:`LOOSplit.order_note`);
   ``order="time"`` forces the timestamp (or file-row) order, e.g. for a file that is a
   real log in row order.
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
Order = Literal["auto", "time", "random"]
TimestampKind = Literal["real", "row-order", "constant"]
ORDERS: tuple[Order, ...] = ("auto", "time", "random")
PHASES: tuple[Phase, ...] = ("valid", "test")
SAMPLERS: tuple[Sampler, ...] = ("uniform", "popularity")


def timestamp_kind(timestamps: pd.Series) -> TimestampKind:
    """What a dataset's ``timestamp`` column really holds.

    Args:
        timestamps: the canonical ``timestamp`` column (int), in file order.

    Returns:
        ``"constant"`` when every value is equal (no time information), ``"row-order"``
        when the values are exactly ``0..n-1`` — what ``recpilot data ingest`` writes
        when the file has no timestamp column — else ``"real"``.
    """
    values = timestamps.to_numpy()
    if len(values) == 0 or (values == values[0]).all():
        return "constant"
    if (
        values.min() == 0
        and values.max() == len(values) - 1
        and len(np.unique(values)) == len(values)
    ):
        return "row-order"
    return "real"


def tie_keys(user_ids: pd.Series, item_ids: pd.Series, seed: int) -> np.ndarray:
    """A seeded pseudo-random uint64 per ``(user, item)``: the tie-break of the ordering.

    Deterministic across runs, processes and row orders (SipHash of ``"user\titem"``
    keyed by the seed, :func:`pandas.util.hash_array`), and unrelated to the item id, so
    a tie does not systematically hold out the higher (or lower) id.

    Args:
        user_ids, item_ids: aligned id columns (cast to str).
        seed: any int; another seed gives another tie order.

    Returns:
        ``(n,)`` uint64 array aligned with the inputs.
    """
    text = (
        user_ids.astype(str).to_numpy(dtype=object)
        + "\t"
        + item_ids.astype(str).to_numpy(dtype=object)
    )
    hash_key = f"{seed & 0xFFFFFFFFFFFFFFFF:016x}"[-16:]
    return pd.util.hash_array(text.astype(object), hash_key=hash_key, categorize=False)


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
            item (so the tie-break, not time, decided which of the two is the test item).
        order: ``"time"`` (by timestamp, ties by the seeded key) or ``"random"`` (a
            seeded random order per user: timestamps ignored).
        timestamps: what the timestamp column holds (:func:`timestamp_kind`).
        ties_with_train: fraction of users whose test timestamp is shared by three or
            more of their items (the tie-break chose both the test and the validation
            item out of a group that also holds training items); 0 for ``order="random"``.
        seed: seed of the tie-break / random order.
        order_note: one sentence for reports saying which order was used and why.
    """

    interactions: pd.DataFrame
    universe: list[str]
    users: list[str]
    min_user: int
    min_item: int
    ties: float
    order: Literal["time", "random"] = "time"
    timestamps: TimestampKind = "real"
    ties_with_train: float = 0.0
    seed: int = 0
    order_note: str = ""
    _targets: dict[Phase, dict[str, str]] = field(default_factory=dict, repr=False)
    _items: dict[str, set[str]] = field(default_factory=dict, repr=False)

    @property
    def tie_rule(self) -> str:
        """How the order of each user's interactions was decided, for reports."""
        if self.order == "random":
            return f"seeded random order per user (seed {self.seed}); timestamps ignored"
        return f"by timestamp; ties broken by a seeded random key (seed {self.seed})"

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


def leave_one_out(
    interactions: pd.DataFrame,
    min_user: int = 5,
    min_item: int = 5,
    order: Order = "auto",
    seed: int = 0,
) -> LOOSplit:
    """Split each user's interactions: last = test, second last = validation, rest = train.

    Args:
        interactions: canonical frame, ``user_id``, ``item_id`` (str), ``rating``,
            ``timestamp`` (int, unix seconds or row order).
        min_user: minimum interactions per user after filtering (>= 3: one training
            interaction, one validation, one test). LlamaRec uses 5.
        min_item: minimum interactions per item (LlamaRec uses 5; 1 = no item filter).
        order: ``"auto"``: by time when the timestamps are real (:func:`timestamp_kind`),
            else a seeded random hold-out per user; ``"time"``: by timestamp (or file row)
            whatever they hold; ``"random"``: seeded random order, timestamps ignored.
        seed: seed of the tie-break key (:func:`tie_keys`) and of the random order.

    Returns:
        The :class:`LOOSplit` (see the module docstring for the rules).

    Raises:
        ValueError: ``min_user`` < 3, ``min_item`` < 1, an unknown ``order``, or no user
            survives.
    """
    if min_user < 3:
        raise ValueError(f"min_user must be >= 3 for a leave-one-out split, got {min_user}")
    if min_item < 1:
        raise ValueError(f"min_item must be >= 1, got {min_item}")
    if order not in ORDERS:
        raise ValueError(f"unknown split order {order!r}; known: {', '.join(ORDERS)}")
    df = interactions[["user_id", "item_id", "rating", "timestamp"]].copy()
    df["user_id"] = df["user_id"].astype(str)
    df["item_id"] = df["item_id"].astype(str)
    kind = timestamp_kind(df["timestamp"])
    used: Literal["time", "random"] = "time"
    if order == "random" or (order == "auto" and kind != "real"):
        used = "random"
    if used == "random" and order == "random":
        note = f"seeded random hold-out per user (seed {seed}), requested (--split random)"
    elif used == "random":
        why = (
            "every interaction has the same timestamp"
            if kind == "constant"
            else "the file had no timestamp column, so they are the file's row order"
        )
        note = (
            f"seeded random hold-out per user (seed {seed}): the timestamps are not real "
            f"({kind}: {why}), so leave-one-out by time would hold out whatever the file "
            "lists last; pass --split time if the row order is a real log"
        )
    elif kind != "real":
        note = (
            f"leave-one-out by the timestamp column although it is {kind} (requested with "
            "--split time): the held-out item is the file's last row per user"
        )
    else:
        note = f"leave-one-out by timestamp; ties broken by a seeded random key (seed {seed})"
    df["_tie"] = tie_keys(df["user_id"], df["item_id"], seed)
    keys = ["user_id", "timestamp", "_tie"] if used == "time" else ["user_id", "_tie"]
    df = df.sort_values(["user_id", "timestamp", "_tie"], kind="stable")
    df = df.drop_duplicates(["user_id", "item_id"], keep="first")
    df = kcore_filter(df, min_user, min_item)
    if df.empty:
        raise ValueError(
            f"no user has {min_user} interactions on items with {min_item} interactions"
        )
    df = df.sort_values(keys, kind="stable")
    df["from_end"] = df.groupby("user_id").cumcount(ascending=False)
    last = df[df["from_end"] == 0].set_index("user_id")["timestamp"]
    prev = df[df["from_end"] == 1].set_index("user_id")["timestamp"]
    ties = float((last == prev.reindex(last.index)).mean())
    ties_with_train = 0.0
    if used == "time":
        same = df.groupby("user_id")["timestamp"].transform(lambda t: (t == t.iloc[-1]).sum())
        ties_with_train = float((same[df["from_end"] == 0] > 2).mean())
    df = df.drop(columns=["_tie"]).reset_index(drop=True)
    universe = sorted(df["item_id"].unique().tolist(), key=lambda i: (len(i), i))
    return LOOSplit(
        interactions=df,
        universe=universe,
        users=sorted(df["user_id"].unique().tolist()),
        min_user=min_user,
        min_item=min_item,
        ties=round(ties, 4),
        order=used,
        timestamps=kind,
        ties_with_train=round(ties_with_train, 4),
        seed=seed,
        order_note=note,
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
