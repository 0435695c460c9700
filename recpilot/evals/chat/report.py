"""``recpilot eval-chat`` outputs: ``chat_report.md``, ``chat_results.json``, a PNG plot.

The tables reuse ``recpilot eval``'s markdown helpers; the plot is the hit rate by turn
(cumulative share of episodes whose target was shown by turn t), one line per
pipeline and setting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recpilot.evals.report import _fmt, _table

PLOT = "hit_rate_by_turn.png"


def _ci(values: list[float], digits: int = 3) -> str:
    return "–" if not values else f"{_fmt(values[0], digits)}–{_fmt(values[1], digits)}"


def results_table(results: dict[str, Any]) -> str:
    """One row per (setting, pipeline): hit@1/5/10 with CIs, AT, cost per turn."""
    rows = []
    for setting, by in results["results"].items():
        for name, m in by.items():
            c = m["cost"]
            rows.append([
                setting, name, m["episodes"], m["hit@1"], m["hit@5"], m["hit@10"],
                _ci(m["hit@10_ci95"]), m["AT"], _ci(m["AT_ci95"], 2),
                c["latency_ms_p50"], c["latency_ms_p95"], c["llm_calls_per_turn"],
                c["prompt_tokens_per_turn"] + c["completion_tokens_per_turn"],
                c["violations_per_turn"], c["repeated_items"],
            ])  # fmt: skip
    header = [
        "setting", "pipeline", "users", "hit@1", "hit@5", "hit@10", "hit@10 95% CI", "AT",
        "AT 95% CI", "latency p50 ms", "latency p95 ms", "LLM calls/turn", "tokens/turn",
        "violations/turn", "repeated items",
    ]  # fmt: skip
    return _table(header, rows)


def turns_table(results: dict[str, Any]) -> str:
    """Turns to the first hit, and the cumulative hit rate by turn."""
    turns = results["config"]["turns"]
    rows = []
    for setting, by in results["results"].items():
        for name, m in by.items():
            dist = m["turns_to_first_hit"]
            rows.append(
                [setting, name]
                + [dist[str(t)] for t in range(1, turns + 1)]
                + [dist["miss"]]
                + [" / ".join(f"{x:.2f}" for x in m["hit_rate_by_turn"])]
            )
    header = ["setting", "pipeline", *[f"hit at turn {t}" for t in range(1, turns + 1)]]
    return _table([*header, "miss", "hit rate by turn 1…T"], rows)


def kinds_table(results: dict[str, Any]) -> str:
    """Share of agent turns that showed the target, by what the simulator had just said."""
    kinds = sorted({k for by in results["results"].values() for m in by.values()
                    for k in m.get("hits_by_message_kind", {})})  # fmt: skip
    rows = []
    for setting, by in results["results"].items():
        for name, m in by.items():
            got = m.get("hits_by_message_kind", {})
            rows.append([setting, name] + [
                f"{got[k]['hit_share']:.2f} ({got[k]['turns']})" if k in got else "–" for k in kinds
            ])  # fmt: skip
    return _table(["setting", "pipeline", *kinds], rows)


def paired_table(results: dict[str, Any]) -> str:
    """Paired differences (later pipeline minus the first) per setting."""
    rows = []
    for setting, by in results["paired"].items():
        for name, d in by.items():
            rows.append([
                setting, name, d["users"], d["delta_hit@10"], _ci(d["delta_hit@10_ci95"]),
                d["delta_AT"], _ci(d["delta_AT_ci95"]),
            ])  # fmt: skip
    header = ["setting", "comparison", "users", "Δ hit@10", "95% CI", "Δ AT", "95% CI"]
    return _table(header, rows)


def plot_hit_rate(results: dict[str, Any], path: Path) -> None:
    """Line plot: cumulative hit rate (target shown) by turn, per pipeline and setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = results["config"]["turns"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for setting, by in results["results"].items():
        style = "-" if setting == "known" else "--"
        for name, m in by.items():
            ax.plot(range(1, turns + 1), m["hit_rate_by_turn"], style, marker="o",
                    label=f"{name}, {setting} user (n={m['episodes']})")  # fmt: skip
    ax.set_xticks(range(1, turns + 1))
    ax.set_xlabel("turn")
    ax.set_ylabel(f"share of episodes with the target shown (k={results['config']['k']})")
    ax.set_title(f"{results['dataset']}: eval-chat, {results['simulator']} simulator")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results: dict[str, Any]) -> str:
    """The report as markdown."""
    cfg, s = results["config"], results["split"]
    cost_notes = []
    for setting, by in results["results"].items():
        for name, m in by.items():
            c = m["cost"]
            cost_notes.append(
                f"- {setting} / {name}: {c['agent_turns']} agent turns, LLM failed calls "
                f"{c['llm_failed_calls']}, turns with a fallback {c['turns_with_fallback']}, "
                f"violating-item share {c['violating_item_share']:.1%}, agent questions "
                f"{c['agent_questions']}, simulator hints dropped by the leakage guard "
                f"{c['simulator_hints_dropped']}"
                + (f", simulator LLM calls {c['simulator_calls']}" if c["simulator_calls"] else "")
            )
    lines = [
        f"# recpilot conversational evaluation — {results['dataset']}",
        "",
        f"- created {results.get('created_at', '')}; command: "
        f"`{' '.join(results.get('command') or [])}`",
        f"- targets: leave-one-out test items of **N = {len(results['users'])}** seeded users "
        f"(seed {cfg['seed']}) of {s['users']}; {s['order_note']}; ties: test/validation "
        f"{s['test_valid_timestamp_ties']:.1%}, with training items too "
        f"{s['ties_with_train']:.1%} "
        "of users",
        f"- simulator: {results['simulator']}"
        + (f" ({results['simulator_model']})" if results.get("simulator_model") else "")
        + f"; T = {cfg['turns']} agent turns, k = {cfg['k']} items a turn; an episode stops "
        "when the target is shown",
        f"- settings: {', '.join(cfg['settings'])} (known: user id + training history; "
        "new: no id, the users' rows removed from training)",
        f"- pipelines: {'; '.join(f'`{k}` = {v}' for k, v in results['pipelines'].items())}",
        f"- LLM: {results.get('llm_model') or 'none'} ({results.get('endpoint') or '–'})",
        f"- git commit `{results.get('git', {}).get('commit')}`"
        + (" (with uncommitted changes)" if results.get("git", {}).get("dirty") else ""),
        f"- wall time {results['seconds']} s (setup {results['setup_s']} s)",
        "",
        "## Results",
        "",
        results_table(results),
        "",
        "hit@K: the target at rank ≤ K in a list of turns 1..T; AT: average turns to the "
        "hit, a miss counts T + 1 (lower is better); latency measured around "
        "`Recommender.run`; violations: shown items contradicting a category, exclusion "
        "or decade the simulated user stated.",
        "",
        "## Turns to the first hit",
        "",
        turns_table(results),
        "",
        "## Hit share of a turn by the message it answered (turns)",
        "",
        kinds_table(results),
        "",
    ]
    if any(results["paired"].values()):
        lines += ["## Paired comparisons (same users)", "", paired_table(results), ""]
    lines += ["## Details", "", *cost_notes, "", f"![hit rate by turn]({PLOT})", ""]
    return "\n".join(lines)


def write_outputs(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``chat_results.json``, ``chat_report.md`` and the plot into ``out_dir``.

    Returns:
        ``{"json", "markdown", "plot"}`` → paths.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "chat_results.json",
        "markdown": out_dir / "chat_report.md",
        "plot": out_dir / PLOT,
    }
    paths["json"].write_text(json.dumps(results, default=str), encoding="utf-8")
    paths["markdown"].write_text(markdown(results), encoding="utf-8")
    plot_hit_rate(results, paths["plot"])
    return paths
