"""Cold-start protocol: new users served from one first-person message, no history.

For a seeded sample of held-out users of the leave-one-out split (test phase):

1. their history is hidden: every row of theirs is removed from the data the
   collaborative model is trained on and the popularity prior is counted from, and
   the graph runs with ``user_id=None`` (an anonymous, cold user);
2. a short first-person message is built *by code* from their training items
   (:func:`first_message`): the three items they rated highest (most recent first
   among ties) and their two most frequent categories among liked items, e.g.
   "I loved Star Wars (1977), Fargo (1996) and Toy Story (1995). I mostly enjoy Drama
   and Comedy. What should I watch next?";
3. each pipeline ranks the whole item universe (k-core filtered) except the user's
   training items (the usual "filter seen" of leave-one-out; never shown to the
   agent), and HR@K / NDCG@K are computed on the held-out test item.

Pipelines — all the same controller graph, fine ranking off (the protocol measures
knowledge-driven understanding and recall, and keeps the LLM cost to 2–3 calls):

- ``popularity``: most-interacted items, message ignored;
- ``no-llm``: the graph without an LLM (rules read the message; no title resolution,
  no sample generation);
- ``llm``: LLM understanding (named titles resolved by fuzzy match) and planning,
  sample generation off;
- ``llm+sample-gen``: the same with sample generation on (LLM-proposed catalogue
  items seed collaborative recall).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.services import Services, build_services
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.evals.harness import llm_client
from recpilot.evals.metrics import hit_rate_at_k, ndcg_at_k, rank_of
from recpilot.evals.split import leave_one_out, sample_users
from recpilot.funnel.scorers.als import CollaborativeModel
from recpilot.llm.calls import recording

PIPELINES = ("popularity", "no-llm", "llm", "llm+sample-gen")


class ColdStartConfig(BaseModel):
    """Parameters of one cold-start run.

    Attributes:
        users: how many held-out users (seeded sample of those with ≥ 3 liked items).
        seed: seed of the user sample and of ALS.
        k: cut-off of HR/NDCG and the list length.
        llm: run the two LLM pipelines (needs the LLM).
        min_user, min_item: k-core filter of the split.
    """

    users: int = Field(default=30, ge=1)
    seed: int = 0
    k: int = Field(default=10, ge=1, le=100)
    llm: bool = True
    min_user: int = Field(default=5, ge=3)
    min_item: int = Field(default=5, ge=1)


def title_of(catalogue: Catalogue, item_id: str) -> str:
    """``"Title (year)"`` as a person would write it."""
    item = catalogue.get(item_id)
    return f"{item.title} ({item.year})" if item.year else item.title


def first_message(catalogue: Catalogue, history: pd.DataFrame) -> tuple[str, list[str]]:
    """The user's first message, built from their training rows.

    Args:
        catalogue: gives titles and categories.
        history: the user's training rows (``item_id``, ``rating``, ``timestamp``).

    Returns:
        ``(message, ids of the three named items)``.

    Raises:
        ValueError: fewer than three rows.
    """
    if len(history) < 3:
        raise ValueError("a cold-start message needs at least three training items")
    ordered = history.sort_values(["rating", "timestamp"], ascending=[False, False], kind="stable")
    named = [str(i) for i in ordered["item_id"].head(3)]
    liked = catalogue.liked_ids(history)
    counts = Counter(c for i in liked for c in catalogue.get(i).categories)
    top = [c for c, _ in counts.most_common(2)]
    titles = [title_of(catalogue, i) for i in named]
    text = f"I loved {titles[0]}, {titles[1]} and {titles[2]}."
    if top:
        text += f" I mostly enjoy {' and '.join(top)}."
    return text + " What should I watch next?", named


def _services(
    settings: Settings, catalogue: Catalogue, model: CollaborativeModel, llm: Any
) -> Services:
    return build_services(
        settings, llm, catalogue=catalogue, coarse_model=model, recall_model=model
    )


def run_cold_start(
    settings: Settings,
    config: ColdStartConfig,
    progress: Callable[[str, int, int], None] = lambda label, done, total: None,
    llm_base_url: str | None = None,
) -> dict[str, Any]:
    """Run the protocol (module docstring) and return the results.

    Args:
        settings: data directory and dataset (its Chroma index must be built).
        config: the run's parameters.
        progress: called as ``(pipeline, users done, users total)``.
        llm_base_url: an already running OpenAI-compatible endpoint (tests); None: the
            settings' endpoint, or the embedded server started for the run.

    Returns:
        ``{"config", "users", "results": {pipeline: {"HR@K", "NDCG@K", "users"}},
        "per_user": [...], "llm": {...}, "seconds"}``.

    Raises:
        FileNotFoundError: dataset or index missing.
    """
    started = time.perf_counter()
    full = Catalogue.load(settings.dataset_dir)
    split = leave_one_out(full.interactions, config.min_user, config.min_item)
    train = split.train_frame("test")
    targets = split.targets("test")
    liked_counts = train[full.liked.mask(train)].groupby("user_id").size()
    eligible = [u for u in split.users if liked_counts.get(u, 0) >= 3 and u in targets]
    users = sample_users(eligible, config.users, config.seed)
    chosen = set(users)
    others = train[~train["user_id"].isin(chosen)].reset_index(drop=True)
    catalogue = Catalogue(full.items, others, full.liked)
    model = CollaborativeModel.train(
        others, catalogue.index_of, len(catalogue),
        factors=settings.als_factors, iterations=settings.als_iterations,
        regularization=settings.als_regularization, alpha=settings.als_alpha, seed=config.seed,
    )  # fmt: skip
    universe = set(split.universe)
    outside = [str(i) for i in catalogue.ids if str(i) not in universe]
    pipelines = [p for p in PIPELINES if config.llm or not p.startswith("llm")]
    graph = build_graph()
    ranks: dict[str, list[int | None]] = {p: [] for p in pipelines}
    per_user: list[dict[str, Any]] = []
    llm_stats = {"calls": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0, "ms": 0.0}
    with llm_client(settings, llm_base_url, config.llm) as llm:
        plain = _services(settings, catalogue, model, None)
        smart = _services(settings, catalogue, model, llm) if llm is not None else None
        for n, user in enumerate(users, start=1):
            rows = train[train["user_id"] == user]
            message, named = first_message(catalogue, rows)
            hidden = list(dict.fromkeys([*outside, *map(str, rows["item_id"])]))
            row: dict[str, Any] = {"user": user, "target": targets[user], "message": message}
            for p in pipelines:
                svc = smart if p.startswith("llm") else plain
                inputs = turn_input(
                    None,
                    None if p == "popularity" else message,
                    config.k,
                    fine_mode="off",
                    channels=["popularity"] if p == "popularity" else None,
                    sample_generation=p == "llm+sample-gen",
                )
                inputs["shown"] = hidden
                with recording() as log:
                    state = graph.invoke(inputs, context=svc)
                ranked = [i.item_id for i in state["items"]]
                rank = rank_of(ranked, targets[user])
                ranks[p].append(rank)
                row[p] = {
                    "rank": rank,
                    "path": state["plan"].path,
                    "channels": state["plan"].channels,
                    "named": state["intent"].liked_items,
                    "pseudo": state.get("pseudo_items", []),
                    "fallbacks": state["fallbacks"],
                }
                if llm is not None and p.startswith("llm"):
                    for call in log.calls:
                        llm_stats["calls"] += 1
                        llm_stats["failed"] += int(bool(call.error))
                        llm_stats["prompt_tokens"] += call.prompt_tokens
                        llm_stats["completion_tokens"] += call.completion_tokens
                        llm_stats["ms"] += call.latency_ms
            row["named_truth"] = named
            per_user.append(row)
            progress("users", n, len(users))
    k = config.k
    results = {
        p: {f"HR@{k}": hit_rate_at_k(r, k), f"NDCG@{k}": ndcg_at_k(r, k), "users": len(r)}
        for p, r in ranks.items()
    }
    resolved = [
        len(set(r["llm"]["named"]) & set(r["named_truth"])) / 3 for r in per_user if "llm" in r
    ]
    pseudo = [len(r["llm+sample-gen"]["pseudo"]) for r in per_user if "llm+sample-gen" in r]
    return {
        "config": config.model_dump(),
        "dataset": settings.dataset,
        "users": users,
        "results": results,
        "named_items_resolved": sum(resolved) / len(resolved) if resolved else None,
        "pseudo_items_per_user": sum(pseudo) / len(pseudo) if pseudo else None,
        "llm": llm_stats,
        "per_user": per_user,
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown_table(results: dict[str, Any]) -> str:
    """The results as a Markdown table (one row per pipeline)."""
    k = results["config"]["k"]
    lines = [f"| pipeline | HR@{k} | NDCG@{k} | users |", "|---|---|---|---|"]
    for name, m in results["results"].items():
        lines.append(f"| {name} | {m[f'HR@{k}']:.4f} | {m[f'NDCG@{k}']:.4f} | {m['users']} |")
    return "\n".join(lines)


def write_results(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``cold_start.json`` and ``cold_start.md`` into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "cold_start.json", "markdown": out_dir / "cold_start.md"}
    paths["json"].write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    extra = [
        f"dataset {results['dataset']}, {len(results['users'])} held-out users, "
        f"seed {results['config']['seed']}, {results['seconds']} s",
    ]
    if results["named_items_resolved"] is not None:
        extra.append(f"named items resolved by the LLM: {results['named_items_resolved']:.0%}")
    if results["pseudo_items_per_user"] is not None:
        extra.append(f"pseudo-interactions kept per user: {results['pseudo_items_per_user']:.2f}")
    body = (
        "# Cold start\n\n" + markdown_table(results) + "\n\n" + "\n".join(f"- {e}" for e in extra)
    )
    paths["markdown"].write_text(body + "\n", encoding="utf-8")
    return paths
