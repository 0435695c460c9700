"""Latency of the non-LLM path of the controller: recall + coarse ranking per request."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from recpilot.agent.runner import Recommender


def percentiles(values: list[float]) -> dict[str, float]:
    """``{"p50", "p95", "max", "mean"}`` of ``values`` (numpy's linear interpolation)."""
    arr = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "max": round(float(arr.max()), 2),
        "mean": round(float(arr.mean()), 2),
    }


def measure_funnel(
    rec: Recommender, user_ids: list[str], requests: int = 200, seed: int = 0, warmup: int = 5
) -> dict[str, Any]:
    """Time ``requests`` recommendations with the LLM off, for random users.

    Every request runs the whole graph (understand → plan → recall → coarse →
    respond) through :class:`~recpilot.agent.runner.Recommender`, which must have been
    opened with ``use_llm=False``; a third of the requests carry a text message and
    constraints so that the semantic channel and the filters are timed too.

    Args:
        rec: an open Recommender without LLM.
        user_ids: users to sample from.
        requests: number of timed requests.
        seed: sampling seed.
        warmup: untimed requests first.

    Returns:
        ``{"requests", "recall_coarse_ms": percentiles, "graph_ms": percentiles}`` where
        ``recall_coarse_ms`` is the sum of the recall and coarse stage durations and
        ``graph_ms`` the whole graph run, both in milliseconds.
    """
    rng = random.Random(seed)
    messages = [None, None, "something lighter from the 90s, no horror"]
    stage_ms: list[float] = []
    total_ms: list[float] = []
    for i in range(warmup + requests):
        result = rec.run(rng.choice(user_ids), rng.choice(messages), k=10, fine_mode="off")
        if i < warmup:
            continue
        stage_ms.append(sum(s["ms"] for s in result.stages if s["stage"] in ("recall", "coarse")))
        total_ms.append(result.total_ms)
    return {
        "requests": requests,
        "recall_coarse_ms": percentiles(stage_ms),
        "graph_ms": percentiles(total_ms),
    }
