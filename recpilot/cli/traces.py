"""``recpilot trace list`` and ``recpilot trace show RUN``: read the stored run traces."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from recpilot.config.settings import Settings
from recpilot.stores.traces.recorder import NodeTrace, RunTrace
from recpilot.stores.traces.store import TraceNotFound, TraceStore

trace_app = typer.Typer(no_args_is_help=True, help="Inspect recorded runs (traces).")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)
BAR_WIDTH = 30


def _store(ctx: typer.Context) -> TraceStore:
    from recpilot.cli.main import settings_from

    settings: Settings = settings_from(ctx)
    if not (settings.home / "traces.sqlite").exists():
        err_console.print(f"[red]error:[/] no traces in {settings.home} yet; run a recommendation")
        raise typer.Exit(1)
    return TraceStore.in_home(settings.home)


@trace_app.command("list")
def trace_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000)] = 20,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user.")] = None,
    thread: Annotated[str | None, typer.Option(help="Only this chat thread.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the newest runs: id, time, user, thread, message, duration, stages, fallbacks."""
    rows = _store(ctx).list(limit, user, thread)
    if as_json:
        for row in rows:
            print(row.model_dump_json())
        return
    table = Table(title=f"{len(rows)} newest runs")
    for col in ("run", "started (UTC)", "user", "thread", "message", "ms", "stages", "LLM", "!"):
        table.add_column(col, overflow="fold")
    for r in rows:
        flag = "error" if r.error else ("fell back" if r.fell_back else "")
        table.add_row(
            r.run_id, r.started_at[:19].replace("T", " "), r.user_id or "-", r.thread_id or "-",
            escape((r.message or "")[:40]), f"{r.total_ms:.0f}", " → ".join(r.stages),
            str(r.llm_calls), flag,
        )  # fmt: skip
    console.print(table)


def _bar(node: NodeTrace, total_ms: float) -> str:
    scale = BAR_WIDTH / max(total_ms, 1e-9)
    lead = int(node.start_ms * scale)
    width = max(1, round(node.ms * scale))
    return " " * min(lead, BAR_WIDTH - 1) + "█" * min(width, BAR_WIDTH - min(lead, BAR_WIDTH - 1))


def print_trace(out: Console, trace: RunTrace, full: bool = False) -> None:
    """Print a run: header, node timeline, candidates per stage, LLM calls, fallbacks."""
    who = f"user {trace.user_id}" if trace.user_id else "anonymous"
    out.print(
        f"[bold]{trace.run_id}[/]  {trace.started_at}  {who}  thread {trace.thread_id or '-'}  "
        f"{trace.total_ms:.0f} ms  LLM calls {trace.llm_calls} "
        f"({trace.prompt_tokens}+{trace.completion_tokens} tokens)"
    )
    if trace.message:
        out.print(f"message: {escape(trace.message)}")
    table = Table(title="timeline")
    for col in ("node", "start ms", "ms", "", "out", "top candidates", "note"):
        table.add_column(col, overflow="fold")
    for node in trace.nodes:
        cands = node.candidates
        top = ", ".join(
            f"{c.item_id}:{c.final:.2f}" if c.final is not None else c.item_id
            for c in (cands or [])[:5]
        )
        count = "" if cands is None else str(len(cands))
        name = f"{node.node} [yellow](fell back)[/]" if node.fell_back else node.node
        table.add_row(
            name, f"{node.start_ms:.0f}", f"{node.ms:.1f}", _bar(node, trace.total_ms), count,
            top, escape(node.note),
        )  # fmt: skip
    out.print(table)
    limit = None if full else 300
    for node in trace.nodes:
        for i, call in enumerate(node.llm_calls, start=1):
            status = f"[red]{escape(call.error)}[/]" if call.error else "ok"
            out.print(
                f"[bold]LLM {node.node}#{i}[/] {call.purpose}: {call.latency_ms:.0f} ms, "
                f"{call.prompt_tokens}+{call.completion_tokens} tokens, "
                f"{call.retries} retries, {status}"
            )
            prompt = "\n".join(f"{m['role']}: {m['content']}" for m in call.messages)
            out.print(f"  prompt: {escape(prompt[:limit])}")
            out.print(f"  answer: {escape(call.response[:limit])}")
    for fb in trace.fallbacks:
        out.print(f"[yellow]fallback:[/] {escape(fb)}")
    if trace.dropped_ids:
        out.print(f"[yellow]dropped invalid ids:[/] {', '.join(trace.dropped_ids)}")
    if trace.error:
        out.print(f"[red]error:[/] {escape(trace.error)}")
    if trace.items:
        listing = ", ".join(f"{i['item_id']} {escape(i['title'])}" for i in trace.items)
        out.print(f"items: {listing}")


@trace_app.command("show")
def trace_show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix of 6+ characters).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole trace as JSON.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Do not cut prompts and answers.")] = False,
) -> None:
    """Show one run: each node's timing, inputs/outputs, candidates and LLM calls."""
    try:
        trace = _store(ctx).get(run)
    except TraceNotFound as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(trace.model_dump(mode="json"), indent=2))
    else:
        print_trace(console, trace, full)
