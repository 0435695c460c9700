"""``recpilot eval-chat``: conversational evaluation with a user simulator.

Protocol in :mod:`recpilot.evals.chat`. Registered on the main app by
``recpilot.cli.main`` (``register(app)``). The agent never imports the simulator: this
command only drives ``Recommender.run`` from the evaluation package.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer


def eval_chat(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=1, help="Users per setting (seeded sample).")] = 50,
    turns: Annotated[int, typer.Option(min=1, max=20, help="T: agent turns per episode.")] = 5,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="Items shown per turn.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of users, ties, simulator, ALS.")] = 0,
    pipeline: Annotated[
        list[str] | None,
        typer.Option(
            help="rules | llm | llm+fine | pipeline (repeatable; default: rules and llm)."
        ),
    ] = None,
    setting: Annotated[
        list[str] | None, typer.Option(help="known | new (repeatable; default: both).")
    ] = None,
    simulator: Annotated[str, typer.Option(help="template | llm (RECPILOT_SIM_LLM_*).")] = (
        "template"
    ),
    no_llm: Annotated[
        bool, typer.Option("--no-llm", help="Only the rules pipeline (no LLM started).")
    ] = False,
    split: Annotated[str, typer.Option(help="Hold-out order: auto | time | random.")] = "auto",
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse the episodes already saved in --out.")
    ] = False,
) -> None:
    """Conversational eval: a simulator seeks a held-out item; hit@K, AT, cost per turn."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from recpilot.cli import main as cli
    from recpilot.evals.chat.episodes import ChatEvalConfig, run_chat_eval
    from recpilot.evals.chat.metrics import summarize_run
    from recpilot.evals.chat.report import results_table, write_outputs
    from recpilot.evals.harness import git_info

    settings = cli.settings_from(ctx)
    if resume and out is None:
        cli.err_console.print("[red]error:[/] --resume needs --out (the folder of the run)")
        raise typer.Exit(2)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = out or settings.home / "evals" / f"{settings.dataset}-chat-{stamp}"
    pipelines = pipeline or (["rules"] if no_llm else ["rules", "llm"])
    if no_llm and any(p != "rules" for p in pipelines):
        cli.err_console.print("[red]error:[/] --no-llm runs only the rules pipeline")
        raise typer.Exit(2)
    if no_llm and simulator == "llm":
        cli.err_console.print("[red]error:[/] --no-llm cannot run the LLM simulator")
        raise typer.Exit(2)
    git = git_info()
    created = cli.make_out_dir(out_dir)
    with cli.clean_errors(), cli.stop_on_interrupt(out_dir, created):
        config = ChatEvalConfig(
            users=users, turns=turns, k=k, seed=seed, pipelines=pipelines,
            settings=setting or ["known", "new"], simulator=simulator, split=split,
            out_dir=out_dir, resume=resume,
        )  # fmt: skip
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn()]  # fmt: skip
        with Progress(*columns, console=cli.err_console) as bar:
            task = bar.add_task("conversations (loading first)", total=None)
            raw = run_chat_eval(
                settings,
                config,
                progress=lambda done, total: bar.update(
                    task, completed=done, total=total, description="conversations"
                ),
            )
        results = summarize_run(raw)
        results["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        results["command"] = ["recpilot", *sys.argv[1:]]
        results["git"] = git
        paths = write_outputs(results, out_dir)
    cli.console.print(results_table(results))
    cli.console.print(f"[green]report[/]: {paths['markdown']}")


def register(app: typer.Typer) -> None:
    """Add the ``eval-chat`` command to the main CLI app."""
    app.command("eval-chat")(eval_chat)
