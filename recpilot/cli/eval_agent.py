"""``recpilot eval-agent``: score the chat controller on the labelled conversation set.

Registered on the main app by ``recpilot.cli.main`` (``register(app)``). Protocol and
scores in :mod:`recpilot.evals.agent`.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

CONTROLLERS = ("llm", "rules")


def eval_agent(
    ctx: typer.Context,
    controller: Annotated[
        list[str] | None, typer.Option(help="llm | rules (repeatable; default: both).")
    ] = None,
    conversations: Annotated[
        Path | None, typer.Option(help="A JSONL set (default: the one shipped).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N conversations.")
    ] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Only the rules controller.")] = False,
    out: Annotated[Path | None, typer.Option(help="Output folder; a run there is resumed.")] = None,
) -> None:
    """Tool choice, argument accuracy and end checks of the LLM and rules controllers."""
    from recpilot.cli import main as cli
    from recpilot.evals.agent.run import evaluate, load_set, markdown, summarise

    settings = cli.settings_from(ctx)
    chosen = controller or (["rules"] if no_llm else list(CONTROLLERS))
    unknown = [c for c in chosen if c not in CONTROLLERS]
    if unknown:
        cli.err_console.print(f"[red]error:[/] unknown controller {unknown[0]!r}: llm or rules")
        raise typer.Exit(2)
    if no_llm and "llm" in chosen:
        cli.err_console.print("[red]error:[/] --no-llm runs only the rules controller")
        raise typer.Exit(2)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = out or settings.home / "evals" / f"agent-{stamp}"
    with cli.clean_errors():
        convs = load_set(conversations)[:limit]
        out_dir.mkdir(parents=True, exist_ok=True)
        turns_file = out_dir / "turns.jsonl"
        model = settings.llm_model
        for name in chosen:
            # a throw-away profile store per controller: feedback in one run does not
            # reach the other, and no real profile is touched
            with tempfile.TemporaryDirectory(prefix="recpilot-eval-agent-") as tmp:
                run_settings = settings.model_copy(
                    update={"controller": name, "store_url": str(Path(tmp) / "profiles.sqlite")}
                )
                with cli.open_recommender(run_settings, name == "llm") as rec:
                    if rec.services and rec.services.llm is not None:
                        model = rec.services.llm.model_name or model
                    evaluate(
                        rec, name, convs, turns_file,
                        progress=lambda c, cid, ts: cli.err_console.print(
                            f"{c} {cid}: {sum(t.tool_ok for t in ts)}/{len(ts)} tools ok"),
                    )  # fmt: skip
        from recpilot.evals.agent.run import TurnScore

        turns = [TurnScore.model_validate_json(x) for x in turns_file.read_text().splitlines()]
        summary = summarise(turns)
        table = markdown(summary, model)
        (out_dir / "summary.json").write_text(
            json.dumps({"model": model, "summary": summary, "conversations": len(convs)}, indent=2)
        )
        (out_dir / "summary.md").write_text(table + "\n")
    cli.console.print(table)
    cli.console.print(f"[green]report[/]: {out_dir / 'summary.md'}")


def register(app: typer.Typer) -> None:
    """Add the ``eval-agent`` command to the main CLI app."""
    app.command("eval-agent")(eval_agent)
