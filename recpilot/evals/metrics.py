"""Ranking metrics for leave-one-out evaluation (one relevant item per user).

Every function takes the same arguments: ``ranks``, one entry per user, the 1-based
position of that user's held-out item in the ranked list the pipeline returned, or
``None`` when the item is not in the list ("not ranked": it scores 0 everywhere); and
``k``, the cut-off. Averages are over all users given, ranked or not.

With exactly one relevant item per user:

- HR@K (hit rate) = Recall@K = mean over users of ``1[rank <= K]``
  (He et al., "Neural Collaborative Filtering", WWW 2017; Recall@K in LlamaRec's code).
- NDCG@K = mean of ``1[rank <= K] / log2(rank + 1)``: DCG with binary gain
  (Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", ACM TOIS
  2002), and the ideal DCG is 1 (the item at rank 1).
- MRR = mean of ``1 / rank`` (0 when not ranked), over the whole returned list —
  mean reciprocal rank (Voorhees, TREC-8 QA track, 1999); with ``k`` it is MRR@K.
- Item coverage@K = |union of the users' top-K lists| / |item universe| — catalogue
  coverage (Ge, Delgado-Battenfeld & Jannach, "Beyond accuracy", RecSys 2010).
- Candidate hit rate = share of users whose held-out item is among the recall stage's
  candidates at all (an upper bound for every later stage's HR).

The tests check these against ``ranx`` (Bassani, ECIR 2022) on the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Rank = int | None


def rank_of(ranked: Sequence[str], target: str) -> Rank:
    """1-based position of ``target`` in ``ranked``, or None if it is absent.

    Args:
        ranked: item ids, best first (duplicates: the first occurrence counts).
        target: the held-out item id.

    Returns:
        The rank (1 = first) or None.
    """
    for pos, item in enumerate(ranked, start=1):
        if item == target:
            return pos
    return None


def _ranks(ranks: Sequence[Rank]) -> np.ndarray:
    """Ranks as floats with ``inf`` for "not ranked"; shape (n_users,)."""
    return np.array([np.inf if r is None else float(r) for r in ranks], dtype=float)


def hit_rate_at_k(ranks: Sequence[Rank], k: int) -> float:
    """HR@K = (1/|U|) Σ_u 1[rank_u <= K]; equals Recall@K with one relevant item.

    Args:
        ranks: per user, 1-based rank of the held-out item or None (not ranked).
        k: cut-off (>= 1).

    Returns:
        A value in [0, 1]; 0.0 for no users.
    """
    r = _ranks(ranks)
    return float((r <= k).mean()) if r.size else 0.0


def ndcg_at_k(ranks: Sequence[Rank], k: int) -> float:
    """NDCG@K = (1/|U|) Σ_u 1[rank_u <= K] / log2(rank_u + 1) (IDCG = 1, one relevant item).

    Args:
        ranks: per user, 1-based rank of the held-out item or None (not ranked).
        k: cut-off (>= 1).

    Returns:
        A value in [0, 1]; 0.0 for no users.
    """
    return float(np.mean(per_user_ndcg(ranks, k))) if len(ranks) else 0.0


def per_user_ndcg(ranks: Sequence[Rank], k: int) -> np.ndarray:
    """Each user's NDCG@K term, shape (n_users,) (used for confidence intervals)."""
    r = _ranks(ranks)
    out = np.zeros_like(r)
    hit = r <= k
    out[hit] = 1.0 / np.log2(r[hit] + 1.0)
    return out


def mrr(ranks: Sequence[Rank], k: int | None = None) -> float:
    """MRR = (1/|U|) Σ_u 1/rank_u, 0 for users whose item is not ranked (or ranked > k).

    Args:
        ranks: per user, 1-based rank of the held-out item or None (not ranked).
        k: optional cut-off; None = the whole returned list (its length is then the
            cut-off, e.g. 20 for the funnel's full-ranking output).

    Returns:
        A value in [0, 1]; 0.0 for no users.
    """
    r = _ranks(ranks)
    if not r.size:
        return 0.0
    if k is not None:
        r = np.where(r <= k, r, np.inf)
    return float((1.0 / r).mean())


def item_coverage(lists: Iterable[Sequence[str]], k: int, n_items: int) -> float:
    """Catalogue coverage@K = |∪_u top-K(u)| / n_items.

    Args:
        lists: each user's ranked item ids, best first.
        k: cut-off.
        n_items: size of the item universe (> 0).

    Returns:
        A value in [0, 1].
    """
    seen: set[str] = set()
    for ranked in lists:
        seen.update(ranked[:k])
    return len(seen) / n_items


def candidate_hit_rate(candidates: Sequence[Iterable[str]], targets: Sequence[str]) -> float:
    """Share of users whose held-out item is among their recall candidates.

    Args:
        candidates: per user, the recall stage's candidate ids (any order).
        targets: per user, the held-out item id (aligned with ``candidates``).

    Returns:
        A value in [0, 1]; 0.0 for no users.
    """
    if not targets:
        return 0.0
    hits = sum(1 for cands, t in zip(candidates, targets, strict=True) if t in set(cands))
    return hits / len(targets)


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (users resampled).

    Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13. For a paired
    comparison pass per-user differences.

    Args:
        values: per-user values (e.g. :func:`per_user_ndcg` terms).
        n_boot: bootstrap resamples.
        seed: numpy ``default_rng`` seed.
        level: coverage, e.g. 0.95.

    Returns:
        ``(low, high)``; ``(nan, nan)`` for no values.
    """
    arr = np.asarray(values, dtype=float)
    if not arr.size:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


def summarize(
    ranks: Sequence[Rank],
    ks: Sequence[int] = (5, 10, 20),
    lists: Sequence[Sequence[str]] | None = None,
    n_items: int | None = None,
) -> dict[str, float]:
    """All metrics of one pipeline on one protocol.

    Args:
        ranks: per user, rank of the held-out item or None.
        ks: cut-offs.
        lists: per user ranked lists (for coverage; omitted when None).
        n_items: item-universe size (for coverage).

    Returns:
        ``{"HR@K", "NDCG@K", "coverage@K" (if lists), "MRR", "users"}``.
    """
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = hit_rate_at_k(ranks, k)
        out[f"NDCG@{k}"] = ndcg_at_k(ranks, k)
        if lists is not None and n_items:
            out[f"coverage@{k}"] = item_coverage(lists, k, n_items)
    out["MRR"] = mrr(ranks)
    out["users"] = len(ranks)
    return out
