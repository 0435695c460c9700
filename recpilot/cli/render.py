"""Terminal rendering of a turn's result (rich): the ranked items and the stages that ran."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from recpilot.agent.runner import TurnResult


def fmt_ms(ms: float) -> str:
    """``850 ms`` or ``1.9 s``."""
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def stages_line(result: TurnResult) -> str:
    """``understand 0 ms → plan 1.9 s → …``, with fallbacks marked."""
    parts = []
    for s in result.stages:
        mark = " [fell back]" if s.get("fell_back") else ""
        parts.append(f"{s['stage']} {fmt_ms(s['ms'])}{mark}")
    return " → ".join(parts)


def print_result(console: Console, result: TurnResult) -> None:
    """Print the items table, the plan, the stages and any fallback."""
    who = f"user {result.user_id}" if result.user_id else "anonymous user"
    table = Table(title=f"Top {len(result.items)} for {who}", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("id", justify="right")
    table.add_column("title")
    table.add_column("year", justify="right")
    table.add_column("score", justify="right")
    table.add_column("reason")
    for item in result.items:
        table.add_row(
            str(item.rank),
            item.item_id,
            item.title,
            str(item.year or ""),
            f"{item.score:.3f}",
            item.reason,
        )
    text = result.reply
    if result.items:  # the tools' text (feedback noted, …) before the table; the list is in it
        text = "\n".join(line for line in result.reply.splitlines()
                         if not line.startswith("Here are "))  # fmt: skip
    if text:
        console.print(text, markup=False)
    if result.items:
        console.print(table)
    if result.tools:
        calls = "; ".join(f"{c['name']}({c['args']})" for c in result.tools)
        console.print(f"[bold]Tools[/] ({result.tools[0].get('source', '')}): {calls}", markup=True)
    plan = result.plan
    if plan is not None:
        console.print(
            f"[bold]Plan[/] ({plan.source}): {plan.path} path, channels "
            f"{', '.join(plan.channels)}, fine ranking {plan.fine_mode}. {plan.reason}"
        )
    if not result.constraints.is_empty():
        console.print(
            f"[bold]Constraints[/]: {result.constraints.model_dump_json(exclude_defaults=True)}"
        )
    console.print(f"[bold]Stages[/]: {stages_line(result)}  (total {fmt_ms(result.total_ms)})")
    for s in result.stages:  # what sample generation proposed; what memory kept
        if s["stage"] in ("generate", "remember") and s.get("note"):
            console.print(f"[bold]{s['stage'].capitalize()}[/]: {s['note']}")
    llm = result.llm
    if llm.calls:
        console.print(
            f"[bold]LLM[/]: {llm.calls} calls, {llm.prompt_tokens} prompt + "
            f"{llm.completion_tokens} completion tokens, {llm.failed} failed"
        )
    for fb in result.fallbacks:
        console.print(f"[yellow]fallback[/]: {fb}")
    if result.dropped_ids:
        dropped = ", ".join(result.dropped_ids)
        console.print(f"[yellow]dropped invalid ids from the LLM[/]: {dropped}")
