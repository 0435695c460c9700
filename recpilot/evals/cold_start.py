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

Pipelines — all the same graph with the fixed understand → plan workflow
(``controller="pipeline"``: the agent's rules controller reads titles and genres
itself, so under it ``named_titles`` and ``genre_preference`` would switch nothing),
fine ranking off (the protocol measures knowledge-driven understanding and recall, and
keeps the LLM cost to 2–3 calls), ALS seeded with the run's seed. Each is the default
settings with a few switched (:data:`PIPELINES`), so the table shows what each switch
buys:

- ``popularity``: most-interacted items, message ignored;
- ``no-llm``: the graph without an LLM, default settings: titles named in the message
  found by code (``named_titles``) seed text i2i and the coarse model's fold-in (the
  hybrid: ALS half-step + co-visitation from the named items + popularity), stated
  genres are soft preferences (``genre_preference=soft``), popularity is a prior;
- ``no-llm:hard-genres``: the same with genres as a hard filter;
- ``no-llm:no-titles``: named titles not read (text and genres only);
- ``no-llm:als``: ALS alone as the coarse/recall model (no co-visitation seeding);
- ``no-llm:before``: all three switched back (hard genres, no titles, ALS) — how the
  protocol ran before soft preferences and title seeding;
- ``llm``: LLM understanding (titles also resolved by the LLM) and planning;
- ``llm+sample-gen``: the same with sample generation on (LLM-proposed catalogue
  items seed collaborative recall).

The ``item text on/off`` comparison is the same run on ``ml-100k`` and on
``ml-100k-text`` (the catalogue with its Wikipedia sentences, ``recpilot data fetch
--as ml-100k-text``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.services import Services, build_services
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.evals.harness import llm_client
from recpilot.evals.metrics import bootstrap_ci, hit_rate_at_k, ndcg_at_k, per_user_ndcg, rank_of
from recpilot.evals.split import leave_one_out, sample_users
from recpilot.funnel.scorers.registry import TrainingData, fit_scorer
from recpilot.llm.calls import recording


@dataclass(frozen=True)
class ColdPipeline:
    """One cold-start pipeline: the graph with some settings switched.

    Attributes:
        name: its row in the table.
        llm: runs with the LLM (skipped with ``--no-llm``).
        popularity_only: only the popularity channel, message ignored.
        sample_generation: LLM pseudo-interactions on the cold path.
        overrides: settings fields changed from the run's settings.
    """

    name: str
    llm: bool = False
    popularity_only: bool = False
    sample_generation: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()


_BEFORE = (("genre_preference", "hard"), ("named_titles", False), ("coarse_model", "als"))
PIPELINES: tuple[ColdPipeline, ...] = (
    ColdPipeline("popularity", popularity_only=True),
    ColdPipeline("no-llm"),
    ColdPipeline("no-llm:hard-genres", overrides=(("genre_preference", "hard"),)),
    ColdPipeline("no-llm:no-titles", overrides=(("named_titles", False),)),
    ColdPipeline("no-llm:als", overrides=(("coarse_model", "als"),)),
    ColdPipeline("no-llm:before", overrides=_BEFORE),
    ColdPipeline("llm", llm=True),
    ColdPipeline("llm+sample-gen", llm=True, sample_generation=True),
)
PIPELINE_NAMES = tuple(p.name for p in PIPELINES)


class ColdStartConfig(BaseModel):
    """Parameters of one cold-start run.

    Attributes:
        users: how many held-out users (seeded sample of those with ≥ 3 liked items).
        seed: seed of the user sample and of ALS.
        k: cut-off of HR/NDCG and the list length.
        llm: run the LLM pipelines (needs the LLM).
        pipelines: names of the pipelines to run (:data:`PIPELINES`); None = all (the
            LLM ones only with ``llm``).
        min_user, min_item: k-core filter of the split.
    """

    users: int = Field(default=30, ge=1)
    seed: int = 0
    k: int = Field(default=10, ge=1, le=100)
    llm: bool = True
    pipelines: list[str] | None = None
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


def selected_pipelines(config: ColdStartConfig) -> list[ColdPipeline]:
    """The pipelines ``config`` asks for, in table order.

    Raises:
        ValueError: an unknown pipeline name (the message lists the known ones), or an
            LLM pipeline asked for with ``llm`` off.
    """
    if config.pipelines is None:
        return [p for p in PIPELINES if config.llm or not p.llm]
    unknown = [n for n in config.pipelines if n not in PIPELINE_NAMES]
    if unknown:
        raise ValueError(f"unknown pipeline(s) {unknown}; known: {', '.join(PIPELINE_NAMES)}")
    chosen = [p for p in PIPELINES if p.name in config.pipelines]
    if not config.llm and any(p.llm for p in chosen):
        raise ValueError("an LLM pipeline was asked for with --no-llm")
    return chosen


def _read_done(path: Path | None, config: ColdStartConfig) -> dict[str, dict[str, Any]]:
    """Per-user rows of an earlier run with the same config (``--resume``), by user id."""
    if path is None or not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or json.loads(lines[0]).get("config") != config.model_dump():
        return {}
    rows = (json.loads(line) for line in lines[1:] if line.strip())
    return {str(r["user"]): r for r in rows}


def run_cold_start(
    settings: Settings,
    config: ColdStartConfig,
    progress: Callable[[str, int, int], None] = lambda label, done, total: None,
    llm_base_url: str | None = None,
    resume_file: Path | None = None,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """Run the protocol (module docstring) and return the results.

    Args:
        settings: data directory and dataset (its Chroma index must be built); the
            pipelines switch fields of it (:data:`PIPELINES`).
        config: the run's parameters.
        progress: called as ``(label, users done, users total)``.
        llm_base_url: an already running OpenAI-compatible endpoint (tests); None: the
            settings' endpoint, or the embedded server started for the run.
        resume_file: a JSON-lines file of per-user rows: rows already there for the same
            config are reused, new ones appended as each user finishes (None: no file).
        max_seconds: stop taking new users after this long (s); the results cover the
            users done so far (``"complete": False``) and a later run with the same
            ``resume_file`` continues.

    Returns:
        ``{"config", "users", "results": {pipeline: {"HR@K", "NDCG@K", "HR@K_ci95",
        "NDCG@K_ci95", "users"}}, "per_user": [...], "llm": {...}, "seconds",
        "complete"}`` (CIs: percentile bootstrap over users, 1000 resamples).

    Raises:
        FileNotFoundError: dataset or index missing.
        ValueError: unknown pipeline names.
    """
    started = time.perf_counter()
    pipelines = selected_pipelines(config)
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
    data = TrainingData(others, catalogue.index_of, len(catalogue))
    fixed = {"sample_generation": False, "controller": "pipeline", "als_seed": config.seed}
    variants = {p.name: settings.model_copy(update={**fixed, **dict(p.overrides)})
                for p in pipelines}  # fmt: skip
    models = {kind: fit_scorer(kind, data, settings)
              for kind in dict.fromkeys(v.coarse_model for v in variants.values())}  # fmt: skip
    universe = set(split.universe)
    outside = [str(i) for i in catalogue.ids if str(i) not in universe]
    graph = build_graph()
    done = _read_done(resume_file, config)
    if resume_file is not None and not done:
        resume_file.parent.mkdir(parents=True, exist_ok=True)
        resume_file.write_text(json.dumps({"config": config.model_dump()}) + "\n", "utf-8")
    per_user: list[dict[str, Any]] = []
    llm_stats = {"calls": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0, "ms": 0.0}
    for row in done.values():
        for key, value in row.get("llm_stats", {}).items():
            llm_stats[key] += value
    wants_llm = any(p.llm for p in pipelines) and any(str(u) not in done for u in users)
    with llm_client(settings, llm_base_url, wants_llm) as llm:
        first: Services | None = None
        services: dict[str, Services] = {}
        for p in pipelines:
            variant = variants[p.name]
            model = models[variant.coarse_model]
            svc = build_services(
                variant, llm if p.llm else None, catalogue=catalogue, coarse_model=model,
                recall_model=model,
                index=first.index if first else None, encoder=first.encoder if first else None,
                item_vectors=first.item_vectors if first else None,
            )  # fmt: skip
            first = first or svc
            services[p.name] = svc
        for n, user in enumerate(users, start=1):
            if str(user) in done:
                per_user.append(done[str(user)])
                progress("users", n, len(users))
                continue
            if max_seconds is not None and time.perf_counter() - started > max_seconds:
                break
            rows = train[train["user_id"] == user]
            message, named = first_message(catalogue, rows)
            hidden = list(dict.fromkeys([*outside, *map(str, rows["item_id"])]))
            row: dict[str, Any] = {"user": user, "target": targets[user], "message": message}
            user_stats = dict.fromkeys(llm_stats, 0)
            for p in pipelines:
                inputs = turn_input(
                    None,
                    None if p.popularity_only else message,
                    config.k,
                    fine_mode="off",
                    channels=["popularity"] if p.popularity_only else None,
                    sample_generation=p.sample_generation,
                )
                inputs["shown"] = hidden
                with recording() as log:
                    state = graph.invoke(inputs, context=services[p.name])
                ranked = [i.item_id for i in state["items"]]
                row[p.name] = {
                    "rank": rank_of(ranked, targets[user]),
                    "path": state["plan"].path,
                    "channels": state["plan"].channels,
                    "named": state["intent"].liked_items,
                    "pseudo": state.get("pseudo_items", []),
                    "fallbacks": state["fallbacks"],
                }
                if p.llm:
                    for call in log.calls:
                        user_stats["calls"] += 1
                        user_stats["failed"] += int(bool(call.error))
                        user_stats["prompt_tokens"] += call.prompt_tokens
                        user_stats["completion_tokens"] += call.completion_tokens
                        user_stats["ms"] += call.latency_ms
            for key, value in user_stats.items():
                llm_stats[key] += value
            row["llm_stats"] = user_stats
            row["named_truth"] = named
            per_user.append(row)
            if resume_file is not None:
                with resume_file.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row, default=str) + "\n")
            progress("users", n, len(users))
    return summarize_runs(config, settings.dataset, users, per_user, pipelines, llm_stats, started)


def summarize_runs(
    config: ColdStartConfig,
    dataset: str,
    users: list[str],
    per_user: list[dict[str, Any]],
    pipelines: list[ColdPipeline],
    llm_stats: dict[str, float],
    started: float,
) -> dict[str, Any]:
    """The result dict of :func:`run_cold_start` from its per-user rows."""
    k = config.k
    results = {}
    for p in pipelines:
        ranks = [r[p.name]["rank"] for r in per_user if p.name in r]
        results[p.name] = {
            f"HR@{k}": hit_rate_at_k(ranks, k),
            f"NDCG@{k}": ndcg_at_k(ranks, k),
            f"HR@{k}_ci95": list(bootstrap_ci([float(x is not None and x <= k) for x in ranks])),
            f"NDCG@{k}_ci95": list(bootstrap_ci(per_user_ndcg(ranks, k))),
            "users": len(ranks),
        }
    resolved = [
        len(set(r["llm"]["named"]) & set(r["named_truth"])) / 3 for r in per_user if "llm" in r
    ]
    by_code = [
        len(set(r["no-llm"]["named"]) & set(r["named_truth"])) / 3
        for r in per_user
        if "no-llm" in r
    ]
    pseudo = [len(r["llm+sample-gen"]["pseudo"]) for r in per_user if "llm+sample-gen" in r]
    return {
        "config": config.model_dump(),
        "dataset": dataset,
        "users": users,
        "complete": len(per_user) == len(users),
        "results": results,
        "named_items_resolved": sum(resolved) / len(resolved) if resolved else None,
        "named_items_found_by_code": sum(by_code) / len(by_code) if by_code else None,
        "pseudo_items_per_user": sum(pseudo) / len(pseudo) if pseudo else None,
        "llm": llm_stats,
        "per_user": per_user,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _ci(bounds: list[float] | None) -> str:
    """``0.120–0.190``, or ``—`` without bounds."""
    if not bounds or any(b != b for b in bounds):  # NaN: no users
        return "—"
    return f"{bounds[0]:.3f}–{bounds[1]:.3f}"


def markdown_table(results: dict[str, Any]) -> str:
    """The results as a Markdown table (one row per pipeline)."""
    k = results["config"]["k"]
    lines = [
        f"| pipeline | HR@{k} | 95% CI | NDCG@{k} | 95% CI | users |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in results["results"].items():
        lines.append(
            f"| {name} | {m[f'HR@{k}']:.4f} | {_ci(m.get(f'HR@{k}_ci95'))} "
            f"| {m[f'NDCG@{k}']:.4f} | {_ci(m.get(f'NDCG@{k}_ci95'))} | {m['users']} |"
        )
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
    if not results.get("complete", True):
        extra.append("INCOMPLETE: stopped early; rerun with --resume to finish")
    if results.get("named_items_found_by_code") is not None:
        extra.append(
            f"named items found by code (no LLM): {results['named_items_found_by_code']:.0%}"
        )
    if results["named_items_resolved"] is not None:
        extra.append(f"named items resolved by the LLM: {results['named_items_resolved']:.0%}")
    if results["pseudo_items_per_user"] is not None:
        extra.append(f"pseudo-interactions kept per user: {results['pseudo_items_per_user']:.2f}")
    body = (
        "# Cold start\n\n" + markdown_table(results) + "\n\n" + "\n".join(f"- {e}" for e in extra)
    )
    paths["markdown"].write_text(body + "\n", encoding="utf-8")
    return paths
