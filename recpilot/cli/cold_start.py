"""``recpilot eval-cold-start``: the cold-start protocol of :mod:`recpilot.evals.cold_start`.

Registered on the main app by ``recpilot.cli.main`` (``register(app)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def eval_cold_start(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=1, help="Held-out users to evaluate.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the user sample and ALS.")] = 0,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="HR/NDCG cut-off.")] = 10,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Skip the LLM pipelines.")] = False,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    pipeline: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this pipeline (repeatable): popularity, no-llm, "
            "no-llm:hard-genres, no-llm:no-titles, no-llm:als, no-llm:before, llm, "
            "llm+sample-gen. Default: all (the LLM ones unless --no-llm)."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse the users an earlier identical run finished.")
    ] = False,
    max_minutes: Annotated[
        float | None,
        typer.Option(min=0.1, help="Stop taking new users after this long (finish with --resume)."),
    ] = None,
) -> None:
    """Cold start: users with hidden history, one generated message, HR/NDCG@k."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from recpilot.cli import main as cli
    from recpilot.evals.cold_start import (
        ColdStartConfig,
        markdown_table,
        run_cold_start,
        write_results,
    )

    settings = cli.settings_from(ctx)
    out_dir = out or settings.home / "evals" / settings.dataset / "cold_start"
    with cli.clean_errors():
        config = ColdStartConfig(
            users=users, seed=seed, k=k, llm=not no_llm, pipelines=pipeline or None
        )
        partial = out_dir / "cold_start.partial.jsonl"
        if not resume and partial.exists():
            partial.unlink()
        columns = [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=cli.err_console) as bar:
            task = bar.add_task("cold start", total=users)
            results = run_cold_start(
                settings,
                config,
                progress=lambda label, done, total: bar.update(task, completed=done, total=total),
                resume_file=partial,
                max_seconds=max_minutes * 60 if max_minutes else None,
            )
        paths = write_results(results, out_dir)
    cli.console.print(markdown_table(results))
    cli.console.print(f"[green]report[/]: {paths['markdown']}")


def register(app: typer.Typer) -> None:
    """Add the ``eval-cold-start`` command to the main CLI app."""
    app.command("eval-cold-start")(eval_cold_start)
