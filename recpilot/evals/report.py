"""Write an evaluation's outputs: ``results.json``, ``per_user.csv``, ``report.md``, plots.

``results.json`` holds every number and the exact settings (dataset checksum, split,
seed, model names, git commit, tuning grids, per-pipeline metrics and costs);
``per_user.csv`` one row per (protocol, pipeline, user) of the test phase with the
held-out item's rank; ``report.md`` the tables; ``metric_by_pipeline.png`` and
``metric_by_history.png`` the plots (matplotlib, Agg backend).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

PLOT_PIPELINE = "metric_by_pipeline.png"
PLOT_HISTORY = "metric_by_history.png"


def _fmt(value: Any, digits: int = 4) -> str:
    """A table cell: floats rounded, None/NaN as '–'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def metric_table(
    by_pipeline: dict[str, dict[str, Any]],
    ks: list[int],
    cost: dict[str, dict[str, Any]] | None = None,
) -> str:
    """Markdown table of one protocol: a row per pipeline, HR/NDCG@K, MRR, coverage…

    Args:
        by_pipeline: ``{pipeline: metrics}`` as in ``results["results"][protocol]``.
        ks: cut-offs to show.
        cost: ``results["cost"]`` to add wall-time columns, or None.

    Returns:
        The table text.
    """
    header = ["pipeline", "users"]
    header += [f"HR@{k}" for k in ks] + [f"NDCG@{k}" for k in ks]
    header += ["NDCG@10 95% CI", "MRR", "coverage@10", "recall cand. HR"]
    if cost:
        header += ["wall ms p50", "wall ms p95"]
    rows = []
    for name, m in by_pipeline.items():
        ci = m.get("NDCG@10_ci95") or [None, None]
        row = [name, m["users"]]
        row += [m[f"HR@{k}"] for k in ks] + [m[f"NDCG@{k}"] for k in ks]
        row += [f"{_fmt(ci[0])}–{_fmt(ci[1])}", m["MRR"], m.get("coverage@10"), m["candidate_HR"]]
        if cost:
            c = cost.get(name, {}).get("wall_ms", {})
            row += [c.get("p50"), c.get("p95")]
        rows.append(row)
    return _table(header, rows)


def cost_table(cost: dict[str, dict[str, Any]]) -> str:
    """Markdown table of measured cost per pipeline (full-ranking test runs)."""
    header = [
        "pipeline", "users", "wall ms p50", "wall ms p95", "LLM calls/user",
        "prompt tok/user", "completion tok/user", "LLM ms p50", "fine fell back",
        "stage ms p50",
    ]  # fmt: skip
    rows = []
    for name, c in cost.items():
        stages = ", ".join(f"{s} {v:.0f}" for s, v in c["stage_ms_p50"].items())
        rows.append([
            name, c["users"], c["wall_ms"]["p50"], c["wall_ms"]["p95"], c["llm_calls_per_user"],
            c["prompt_tokens_per_user"], c["completion_tokens_per_user"], c["llm_ms"]["p50"],
            c["fine_fell_back"], stages,
        ])  # fmt: skip
    return _table(header, rows)


def plot_by_pipeline(results: dict[str, Any], path: Path) -> None:
    """Bar chart: NDCG@10 and HR@10 per pipeline, full ranking (LLM rows on their users)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = dict(results["results"]["full"])
    sample = results["llm_sample"].get("full", {})
    names, ndcg, hr, labels = [], [], [], []
    for name, m in full.items():
        names.append(name)
        ndcg.append(m["NDCG@10"])
        hr.append(m["HR@10"])
        labels.append(f"{name}\n(n={m['users']})")
    for name, m in sample.items():
        if "+fine:" in name:
            continue
        names.append(f"{name} [LLM users]")
        ndcg.append(m["NDCG@10"])
        hr.append(m["HR@10"])
        labels.append(f"{name}\n[LLM users, n={m['users']}]")
    fig, ax = plt.subplots(figsize=(max(8, 1.0 * len(names)), 5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], ndcg, width=0.4, label="NDCG@10")
    ax.bar([i + 0.2 for i in x], hr, width=0.4, label="HR@10")
    ref = results["reference"]
    ax.axhline(ref["LlamaRec"]["NDCG@10"], color="C0", ls="--", lw=0.8,
               label="LlamaRec NDCG@10 (its 'ML-100k' = ml-latest-small)")  # fmt: skip
    ax.axhline(ref["LlamaRec"]["HR@10"], color="C1", ls="--", lw=0.8,
               label="LlamaRec Recall@10")  # fmt: skip
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_title(f"{results['dataset']['name']}: leave-one-out, full ranking (test)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_by_history(results: dict[str, Any], path: Path) -> None:
    """NDCG@10 by training-history length (cold-start slice: 1, 3, 5, full)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_h = results["cold_start"]["by_history"]
    points = [h for h in by_h if h != "full"] + (["full"] if "full" in by_h else [])
    fig, ax = plt.subplots(figsize=(8, 5))
    names = sorted({n for h in points for n in by_h[h]})
    for name in names:
        xs = [h for h in points if name in by_h[h]]
        ax.plot(xs, [by_h[h][name]["NDCG@10"] for h in xs], marker="o", label=name)
    ax.set_xlabel("training interactions per user (cold-start slice)")
    ax.set_ylabel("NDCG@10 (full ranking)")
    ax.set_title(f"{results['dataset']['name']}: {results['cold_start']['users']} users")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results: dict[str, Any]) -> str:
    """The report as markdown (tables of every protocol, tuning, cost, cold start)."""
    ks = results["config"]["ks"]
    d, s, g = results["dataset"], results["split"], results["git"]
    cfg, models = results["config"], results["models"]
    out = [
        f"# recpilot offline evaluation — {d['name']}",
        "",
        f"- created {results['created_at']}; command: `{' '.join(results['command'] or [])}`",
        f"- dataset `{d['name']}`: {d['n_users']} users, {d['n_items']} items, "
        f"{d['n_interactions']} interactions; interactions sha256 `{d['interactions_sha256']}`",
        f"- split: {s['protocol']}; {s['min_user']}-core users, {s['min_item']}-core items → "
        f"{s['users']} users, {s['universe_items']} items ranked, {s['interactions']} "
        f"interactions; test/validation timestamp ties: {s['test_valid_timestamp_ties']:.1%} "
        f"of users, with training items too: {s.get('ties_with_train', 0):.1%} "
        f"({s.get('tie_rule', 'broken by item id')})",
        f"- order: {s.get('order_note', 'leave-one-out by (timestamp, item id)')}",
        f"- seed {cfg['seed']}; non-LLM pipelines on {s['eval_users']} users; LLM pipelines on "
        f"**N = {results['llm_sample']['users']}** seeded users",
        f"- LLM: {models['llm'] or 'not run'} ({models['llm_endpoint'] or '–'}); embeddings: "
        f"{models['embedding']['encoder']} (dim {models['embedding']['dim']}); LLM pipelines "
        f"re-rank the short list of `{models['coarse_base_for_llm']}` (best on validation); "
        f"fine_weight used: {models['fine_weight_used']}",
        f"- git commit `{g['commit']}`{' (with uncommitted changes)' if g['dirty'] else ''}",
        f"- wall time: {results['timing_s']}, "
        f"{results.get('jobs', 1)} process(es) for the non-LLM runs",
        "",
        "## Full ranking (test item among all unseen items), all evaluated users",
        "",
        metric_table(results["results"]["full"], ks, results["cost"]),
        "",
    ]
    ref = results["reference"]
    out += [
        f"Reference ({ref['source']}): LlamaRec NDCG@10 {ref['LlamaRec']['NDCG@10']}, "
        f"Recall@10 {ref['LlamaRec']['HR@10']}; LRURec {ref['LRURec']['NDCG@10']} / "
        f"{ref['LRURec']['HR@10']}. Note: {ref['dataset_note']}.",
        "",
    ]
    sample = results["llm_sample"]
    if sample.get("users"):
        out += [
            f"## LLM sample: the same {sample['users']} users for every pipeline (full ranking)",
            "",
            metric_table(sample["full"], ks),
            "",
            "Paired difference in NDCG@10 against the LLM pipelines' coarse base, on the "
            "same users (bootstrap 95% CI):",
            "",
            _table(
                ["pipeline", "users", "Δ NDCG@10", "95% CI"],
                [
                    [n, p["users"], p["delta_NDCG@10"], "–".join(_fmt(x) for x in p["ci95"])]
                    for n, p in sample["paired_vs_base"].items()
                ],
            ),
            "",
        ]
        for proto in [p for p in sample if p.startswith("sampled-")]:
            out += [
                f"LLM sample, {proto} (the users the LLM pipelines ran this protocol on):",
                "",
                metric_table(sample[proto], ks),
                "",
            ]
    for proto in [p for p in results["results"] if p != "full"]:
        out += [
            f"## {proto}: held-out item among {cfg['negatives']} {proto.split('-')[1]}-sampled "
            "negatives",
            "",
            metric_table(results["results"][proto], ks),
            "",
        ]
    out += ["## Cost per pipeline (full ranking, test phase; measured)", "",
            cost_table(results["cost"]), ""]  # fmt: skip
    tuning = results.get("tuning")
    out += ["## Tuning on the validation items (never the test items)", ""]
    if tuning:
        out += [
            f"- ALS grid ({len(tuning['als_grid'])} points), chosen {tuning['als']} → "
            f"validation {tuning['als_metrics']}",
            f"- hybrid grid ({len(tuning['hybrid_grid'])} points), chosen {tuning['hybrid']} → "
            f"validation {tuning['hybrid_metrics']}",
            "",
        ]
    else:
        out += ["- not tuned (--no-tune): shipped ALS settings and default hybrid parameters", ""]
    abl_v = (tuning or {}).get("ablation", {})
    abl_t = results.get("ablation_test", {})
    if abl_v or abl_t:
        names = list(abl_v or abl_t)
        rows = [
            [n, abl_v.get(n, {}).get("NDCG@10"), abl_v.get(n, {}).get("HR@10"),
             abl_t.get(n, {}).get("NDCG@10"), abl_t.get(n, {}).get("HR@10")]
            for n in names
        ]  # fmt: skip
        out += [
            "What helps the coarse ranker — feature ablation of the hybrid (full ranking; "
            "choices were made on validation only, test shown for information):",
            "",
            _table(
                ["features", "valid NDCG@10", "valid HR@10", "test NDCG@10", "test HR@10"], rows
            ),  # fmt: skip
            "",
        ]
    out += [
        "Validation through the graph (same items, recall + coarse):",
        "",
        metric_table(results["validation"], ks),
        "",
    ]
    for mode, ft in results.get("fine_weight_tuning", {}).items():
        rows = [[w, v["NDCG@10"], v["HR@10"]] for w, v in ft["grid"].items()]
        out += [
            f"fine_weight for {mode} on {ft['users']} validation users (LLM scores recorded "
            f"once, re-blended): chosen {ft['chosen']}",
            "",
            _table(["weight", "NDCG@10", "HR@10"], rows),
            "",
        ]
    sens = sample.get("fine_weight_sensitivity_test", {})
    for name, grid in sens.items():
        rows = [[w, v["NDCG@10"], v["HR@10"]] for w, v in grid.items()]
        out += [
            f"Sensitivity (test users, NOT used for any choice): {name} re-blended at every "
            "weight (0 = coarse order, 1 = LLM order)",
            "",
            _table(["weight", "NDCG@10", "HR@10"], rows),
            "",
        ]
    cold = results["cold_start"]
    if cold["by_history"]:
        out += [
            f"## Cold-start slice: {cold['users']} users ({cold['llm_users']} with the LLM), "
            "training history cut to their first h interactions",
            "",
        ]
        for h, by in cold["by_history"].items():
            out += [f"### history = {h}", "", metric_table(by, ks), ""]
    out += ["## Plots", "", f"![metric by pipeline]({PLOT_PIPELINE})", ""]
    if cold["by_history"]:
        out += [f"![metric by history length]({PLOT_HISTORY})", ""]
    out += [
        "## Notes",
        "",
        "- HR@K equals Recall@K under leave-one-out. MRR is over the returned list (20 items "
        "in full ranking). Items the funnel does not return count as not ranked.",
        "- Channel-alone rows read the recall node's output (the channel's own order). "
        "Semantic recall alone is not a row: leave-one-out requests carry no text query, "
        "so the channel returns nothing (it is exercised by `recpilot eval-cold-start`, "
        "whose requests are messages).",
        "- Sampled protocols: recall is limited to the 101 items (graph input `shown`); "
        "coarse orders all of them; LLM pipelines re-rank the coarse top 20, the other 81 "
        "follow in coarse order.",
        "- Cold start: models are retrained with the slice's users cut to their first h "
        "training interactions; the held-out item is still their last interaction.",
    ]
    return "\n".join(out) + "\n"


def write_outputs(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write every output file into ``out_dir`` (created).

    Args:
        results: :func:`recpilot.evals.harness.run_eval`'s return value.
        out_dir: destination folder.

    Returns:
        ``{"json", "csv", "markdown", "plot_pipeline", "plot_history"}`` → paths.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    per_user = results.get("_per_user", [])
    body = {k: v for k, v in results.items() if k != "_per_user"}
    paths = {
        "json": out_dir / "results.json",
        "csv": out_dir / "per_user.csv",
        "markdown": out_dir / "report.md",
        "plot_pipeline": out_dir / PLOT_PIPELINE,
        "plot_history": out_dir / PLOT_HISTORY,
    }
    paths["json"].write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
    pd.DataFrame(per_user).to_csv(paths["csv"], index=False)
    paths["markdown"].write_text(markdown(body), encoding="utf-8")
    plot_by_pipeline(body, paths["plot_pipeline"])
    if body["cold_start"]["by_history"]:
        plot_by_history(body, paths["plot_history"])
    else:
        paths.pop("plot_history").unlink(missing_ok=True)  # no stale plot from an older run
    return paths
