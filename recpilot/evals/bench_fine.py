"""Benchmark of LLM fine ranking: wall time per mode, cold and repeated, with prompt sizes.

Run against the embedded model (starts it, ~3 s; ``RECPILOT_HOME`` picks the data folder
holding the assembled GGUF)::

    .venv/bin/python -m recpilot.evals.bench_fine --repeats 2
    .venv/bin/python -m recpilot.evals.bench_fine --mode listwise --top-n 5 --budget 350
    .venv/bin/python -m recpilot.evals.bench_fine --mode pointwise --max-llm-items 8

It ranks 20 MovieLens-like candidates for a user with 10 history items, in both modes.
"Cold" means the server's KV cache holds an unrelated prompt (a flush call is sent
first), so the whole prompt is processed; repeats reuse the cached prefix.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from recpilot.funnel.fine_rank import DEFAULT_TOP_N, FineModeName, fine_rank
from recpilot.llm.calls import recording
from recpilot.llm.client import LLMClient

DEFAULT_PROFILE = "Likes animated family films and musicals; rates Disney classics highly."

_FLUSH = [{"role": "user", "content": "Is the sky green? Answer Yes or No."}]


def measure_fine_rank(
    client: LLMClient,
    catalogue_like_candidates: list[dict[str, Any]],
    history: list[dict[str, Any]],
    repeats: int,
    *,
    profile: str = DEFAULT_PROFILE,
    modes: tuple[FineModeName, ...] = ("pointwise", "listwise"),
    weight: float = 0.5,
    prompt_token_budget: int = 1500,
    **fine_kwargs: Any,
) -> dict[str, Any]:
    """Time :func:`~recpilot.funnel.fine_rank.fine_rank` per mode: one cold call + repeats.

    Args:
        client: an LLM client (the embedded server for meaningful numbers).
        catalogue_like_candidates: ``{"item_id", "title", "year", "categories",
            "coarse_score"}`` in coarse order (e.g. 20 of them).
        history: ``{"item_id", "title", "year", "categories", "rating"?}``, oldest first.
        repeats: warm repetitions after the cold call (>= 0).
        profile: the profile summary text.
        modes: modes to measure, in this order.
        weight: blend weight passed to ``fine_rank``.
        prompt_token_budget: token budget passed to ``fine_rank``.
        **fine_kwargs: more ``fine_rank`` keywords (``top_n``, ``max_llm_items``...).

    Returns:
        ``{mode: {"cold_s", "warm_s" (list), "warm_median_s", "llm_calls",
        "prompt_tokens" (server-reported, cold run), "completion_tokens",
        "prompt_tokens_est", "history_used", "truncated", "fell_back",
        "fallback_reason", "order"}}``; times in seconds.

    Raises:
        ValueError: ``repeats`` < 0.
    """
    if repeats < 0:
        raise ValueError("repeats must be >= 0")
    report: dict[str, Any] = {}
    for mode in modes:
        times: list[float] = []
        cold: dict[str, Any] = {}
        for run in range(repeats + 1):
            if run == 0:
                try:
                    client.yes_probability(_FLUSH, purpose="bench_flush")
                except Exception:  # noqa: BLE001 - the flush is best effort
                    pass
            start = time.perf_counter()
            with recording() as log:
                result = fine_rank(
                    client, profile, history, catalogue_like_candidates, mode, weight,
                    prompt_token_budget, **fine_kwargs,
                )  # fmt: skip
            times.append(time.perf_counter() - start)
            if run == 0:
                cold = {
                    "llm_calls": len(log.calls),
                    "prompt_tokens": sum(c.prompt_tokens for c in log.calls),
                    "completion_tokens": sum(c.completion_tokens for c in log.calls),
                    "prompt_tokens_est": result.prompt_tokens_est,
                    "history_used": result.history_used,
                    "truncated": len(result.truncated_ids),
                    "fell_back": result.fell_back,
                    "fallback_reason": result.fallback_reason,
                    "order": result.order,
                }
        report[mode] = {
            "cold_s": round(times[0], 3),
            "warm_s": [round(t, 3) for t in times[1:]],
            "warm_median_s": round(statistics.median(times[1:]), 3) if repeats else None,
            **cold,
        }
    return report


def demo_inputs() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """20 MovieLens-100K-like candidates and a 10-item Disney-fan history (built in).

    Returns:
        ``(candidates in coarse order, history oldest first)``.
    """
    anim, kids, mus, com = "Animation", "Children's", "Musical", "Comedy"
    hist = [
        ("1", "Toy Story", 1995, [anim, kids, com]),
        ("71", "Lion King, The", 1994, [anim, kids, mus]),
        ("95", "Aladdin", 1992, [anim, kids, com, mus]),
        ("99", "Snow White and the Seven Dwarfs", 1937, [anim, kids, mus]),
        ("404", "Pinocchio", 1940, [anim, kids]),
        ("418", "Cinderella", 1950, [anim, kids, mus]),
        ("420", "Alice in Wonderland", 1951, [anim, kids, mus]),
        ("422", "Aladdin and the King of Thieves", 1996, [anim, kids, com]),
        ("501", "Dumbo", 1941, [anim, kids, mus]),
        ("588", "Beauty and the Beast", 1991, [anim, kids, mus]),
    ]  # fmt: skip
    cands = [
        ("50", "Star Wars", 1977, ["Action", "Adventure", "Romance", "Sci-Fi"]),
        ("100", "Fargo", 1996, ["Crime", "Drama", "Thriller"]),
        ("181", "Return of the Jedi", 1983, ["Action", "Adventure", "Romance", "Sci-Fi"]),
        ("258", "Contact", 1997, ["Drama", "Sci-Fi"]),
        ("8", "Babe", 1995, [kids, com, "Drama"]),
        ("288", "Scream", 1996, ["Horror", "Thriller"]),
        ("294", "Liar Liar", 1997, [com]),
        ("300", "Air Force One", 1997, ["Action", "Thriller"]),
        ("121", "Independence Day (ID4)", 1996, ["Action", "Sci-Fi", "War"]),
        ("432", "Fantasia", 1940, [anim, kids, mus]),
        ("127", "Godfather, The", 1972, ["Action", "Crime", "Drama"]),
        ("56", "Pulp Fiction", 1994, ["Crime", "Drama"]),
        ("98", "Silence of the Lambs, The", 1991, ["Drama", "Thriller"]),
        ("169", "Wrong Trousers, The", 1993, [anim, com]),
        ("237", "Jerry Maguire", 1996, ["Drama", "Romance"]),
        ("117", "Rock, The", 1996, ["Action", "Adventure", "Thriller"]),
        ("1219", "Goofy Movie, A", 1995, [anim, kids, com]),
        ("222", "Star Trek: First Contact", 1996, ["Action", "Adventure", "Sci-Fi"]),
        ("313", "Titanic", 1997, ["Action", "Drama", "Romance"]),
        ("596", "Hunchback of Notre Dame, The", 1996, [anim, kids, mus]),
    ]  # fmt: skip
    history = [
        {"item_id": i, "title": t, "year": y, "categories": c, "rating": 5} for i, t, y, c in hist
    ]
    candidates = [
        {"item_id": i, "title": t, "year": y, "categories": c, "coarse_score": 2.0 - 0.05 * k}
        for k, (i, t, y, c) in enumerate(cands)
    ]
    return candidates, history


def main() -> None:
    """CLI: start the LLM (embedded unless RECPILOT_LLM_BASE_URL is set), print the report."""
    from recpilot.config.settings import Settings
    from recpilot.llm.server import resolve_llm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="warm runs after the cold one")
    parser.add_argument("--mode", choices=["pointwise", "listwise", "both"], default="both")
    parser.add_argument("--budget", type=int, default=None, help="prompt token budget")
    parser.add_argument("--top-n", type=int, default=DEFAULT_TOP_N, help="listwise ids")
    parser.add_argument("--max-llm-items", type=int, default=None)
    args = parser.parse_args()
    settings = Settings()
    candidates, history = demo_inputs()
    modes: tuple[FineModeName, ...] = (
        ("pointwise", "listwise") if args.mode == "both" else (args.mode,)
    )
    with resolve_llm(settings) as base_url:
        client = LLMClient.from_settings(settings, base_url)
        report = measure_fine_rank(
            client, candidates, history, args.repeats, modes=modes,
            weight=settings.fine_weight,
            prompt_token_budget=args.budget or settings.fine_prompt_tokens,
            top_n=args.top_n, max_llm_items=args.max_llm_items,
        )  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
