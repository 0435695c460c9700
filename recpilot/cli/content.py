"""``recpilot describe``, ``recpilot promote`` and ``recpilot enrich``: the LLM writes
about items, every fact checked against the data (:mod:`recpilot.content`).

Registered on the main app by ``recpilot.cli.main`` (``register(app)``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Annotated

import typer

from recpilot.config.settings import Settings


def _cli():  # imported lazily: cli imports this module
    from recpilot.cli import main as cli

    return cli


@contextlib.contextmanager
def _llm(settings: Settings) -> Iterator:
    from recpilot.agent.services import open_llm

    cli = _cli()
    what = "starting the embedded LLM" if not settings.llm_base_url else "connecting to the LLM"
    with contextlib.ExitStack() as stack:
        with cli.err_console.status(f"{what} …"):
            llm = stack.enter_context(open_llm(settings))
        yield llm


def _dataset(settings: Settings):
    from recpilot.data.catalogue import Catalogue
    from recpilot.data.meta import read_meta

    catalogue = Catalogue.load(settings.dataset_dir)
    noun = "item"
    if (settings.dataset_dir / "meta.json").is_file():
        noun = read_meta(settings.dataset_dir).item_noun
    return catalogue, noun


def _grounded(ctx: typer.Context, item: str, kind: str, audience: str, attempts: int,
              as_json: bool) -> None:  # fmt: skip
    from recpilot.content.facts import item_facts
    from recpilot.content.grounded import generate_grounded

    cli = _cli()
    settings = cli.settings_from(ctx)
    with cli.clean_errors():
        catalogue, noun = _dataset(settings)
        facts = item_facts(catalogue, item, noun)  # unknown id: a clean error, before the LLM
        with _llm(settings) as llm:
            result = generate_grounded(llm, catalogue, facts, kind,  # type: ignore[arg-type]
                                       audience=audience, attempts=attempts)  # fmt: skip
    if as_json:
        print(result.model_dump_json(indent=2))
    elif result.ok:
        cli.console.print(f"[bold]{facts.title}[/] [{item}]: {result.text}")
        if result.problems:
            cli.console.print(f"[dim]({len(result.problems)} earlier attempt(s) failed the "
                              "fact-check and were regenerated)[/]")  # fmt: skip
    if not result.ok:
        reasons = "; ".join(p for attempt in result.problems for p in attempt)
        cli.err_console.print(f"[red]error:[/] every attempt ({result.attempts}) failed the "
                              f"fact-check, nothing written: {reasons}")  # fmt: skip
        raise typer.Exit(1)


def describe(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="Catalogue item id.")],
    attempts: Annotated[int, typer.Option(min=1, max=5, help="LLM calls at most.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write a short description of an item; every fact is checked against the data."""
    _grounded(ctx, item, "description", "", attempts, as_json)


def promote(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="Catalogue item id.")],
    audience: Annotated[str, typer.Option(help="Who the copy is for.")] = "anyone",
    attempts: Annotated[int, typer.Option(min=1, max=5, help="LLM calls at most.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write short ad copy for an item and an audience; every fact is checked."""
    _grounded(ctx, item, "promotion", audience, attempts, as_json)


LimitOpt = Annotated[int | None, typer.Option(min=1, help="At most N items (most popular first).")]
ItemsOpt = Annotated[list[str] | None, typer.Option("--item", help="Only these item ids.")]
ConcurrencyOpt = Annotated[
    int, typer.Option(min=1, max=32, help="LLM calls in flight (1 for the embedded LLM).")
]
ActivateOpt = Annotated[
    bool,
    typer.Option("--activate/--no-activate",
                 help="Feed the results into item text (then run `recpilot index`)."),
]  # fmt: skip
DeactivateOpt = Annotated[
    bool, typer.Option("--deactivate", help="Only switch the enrichment off (the cache stays).")
]


def enrich(
    ctx: typer.Context,
    limit: LimitOpt = None,
    item: ItemsOpt = None,
    concurrency: ConcurrencyOpt = 1,
    activate: ActivateOpt = True,
    deactivate: DeactivateOpt = False,
) -> None:
    """LLM item enrichment: a description and keyword tags per item, fact-checked,
    cached per item and model (a rerun resumes), fed into the item embeddings."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from recpilot.content import enrich as job

    cli = _cli()
    settings = cli.settings_from(ctx)
    with cli.clean_errors():
        if deactivate:
            was = job.deactivate(settings.dataset_dir)
            cli.console.print("enrichment switched off; run `recpilot index`" if was
                              else "no enrichment was active")  # fmt: skip
            return
        catalogue, noun = _dataset(settings)
        ids = list(item) if item else None
        total = min(len(ids) if ids else len(catalogue), limit or len(catalogue))
        with _llm(settings) as llm:
            columns = [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TimeRemainingColumn()]  # fmt: skip
            with Progress(*columns, console=cli.err_console) as bar:
                task = bar.add_task("enrich", total=total)
                report = job.enrich_items(
                    llm, catalogue, settings.dataset_dir, noun=noun, item_ids=ids,
                    limit=limit, concurrency=concurrency,
                    on_item=lambda _entry: bar.advance(task),
                )  # fmt: skip
            active = job.activate(settings.dataset_dir, llm.model_name) if activate else None
    cli.console.print(json.dumps(report.model_dump(), indent=2))
    if active is not None:
        cli.console.print(f"{active} item(s) now carry an enrichment in their text; "
                          "run `recpilot index` to embed it")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``describe``, ``promote`` and ``enrich`` to ``app``."""
    app.command()(describe)
    app.command()(promote)
    app.command()(enrich)
