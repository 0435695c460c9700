"""The ``recpilot`` command line (typer + rich).

Global options (``--home``, ``--dataset``) and per-command flags override the
environment (``RECPILOT_*``), which overrides ``.env``, which overrides defaults.
Known errors print one clear line and exit with status 1 (bad input: 2); no traceback.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from recpilot.cli.serve import serve
from recpilot.cli.traces import trace_app
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Constraints
from recpilot.data.ingest import IngestError, add_item_text, ingest
from recpilot.data.item_index import build_index as index_items
from recpilot.data.item_index import index_is_current
from recpilot.data.meta import LikedRule, read_meta
from recpilot.data.movielens import FetchError, fetch_movielens_100k
from recpilot.funnel.scorers.registry import Scorer
from recpilot.funnel.training import RECORD_FILE, is_trained, selected_kinds, train_models
from recpilot.llm.client import LLMConfigError, LLMError
from recpilot.llm.server import LLMSetupError

if TYPE_CHECKING:
    from recpilot.agent.runner import Recommender

app = typer.Typer(no_args_is_help=True, help="recpilot: an LLM-controlled recommender.")
data_app = typer.Typer(no_args_is_help=True, help="Get datasets into the data directory.")
app.add_typer(data_app, name="data")
app.add_typer(trace_app, name="trace")
app.command()(serve)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one error, one line
FineModeOpt = Annotated[
    str | None, typer.Option("--fine-mode", help="pointwise | listwise | off (default: settings)")
]
SampleGenOpt = Annotated[
    bool | None,
    typer.Option(
        "--sample-generation/--no-sample-generation",
        help="Cold users: LLM pseudo-interactions seed collaborative recall (default: settings).",
    ),
]


def one_line(err: ValidationError) -> str:
    """A pydantic error as one line: ``invalid <model>: field: message; …``."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg'].removeprefix('Value error, ')}"
        for e in err.errors()
    ]
    return f"invalid {err.title}: " + "; ".join(parts)


@contextlib.contextmanager
def clean_errors() -> Iterator[None]:
    """Turn the known error types into one red line and a non-zero exit."""
    try:
        yield
    except ValidationError as err:
        err_console.print(f"[red]error:[/] {escape(one_line(err))}")
        raise typer.Exit(2) from None
    except LLMConfigError as err:  # bad key / unknown model: a misconfiguration, not a fault
        err_console.print(f"[red]error:[/] {escape(str(err))}")
        raise typer.Exit(2) from None
    except (IngestError, ValueError, KeyError) as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}")
        raise typer.Exit(2) from None
    except (FileNotFoundError, FetchError, LLMSetupError, LLMError, OSError, sqlite3.Error) as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}")
        raise typer.Exit(1) from None


def make_out_dir(out_dir: Path) -> bool:
    """Create an eval's ``--out`` folder before any work (a bad one must not cost a run).

    Returns:
        True if the folder was created now, False if it already existed.

    Raises:
        typer.Exit: code 2, with a one-line message naming ``--out``, if it cannot be made.
    """
    existed = out_dir.is_dir()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err_console.print(f"[red]error:[/] --out {out_dir}: cannot create the folder ({exc})")
        raise typer.Exit(2) from None
    return not existed


@contextlib.contextmanager
def stop_on_interrupt(out_dir: Path, created: bool) -> Iterator[None]:
    """Ctrl-C during an eval: say what is kept, remove an ``--out`` folder made empty, exit 130.

    Args:
        out_dir: the run's output folder.
        created: True if this run created it (only then is an empty one removed).
    """
    try:
        yield
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            if created and not any(out_dir.iterdir()):
                out_dir.rmdir()
        if out_dir.is_dir() and any(out_dir.iterdir()):
            kept = f"what finished is kept in {out_dir}; continue with --resume --out {out_dir}"
        else:
            kept = "nothing was written"
        err_console.print(f"[yellow]interrupted[/]: {escape(kept)}")
        raise typer.Exit(130) from None


@contextlib.contextmanager
def open_recommender(settings: Settings, use_llm: bool) -> Iterator[Recommender]:
    """A started :class:`Recommender`, with a spinner on stderr while it starts."""
    from recpilot.agent.runner import Recommender

    what = "starting the embedded LLM" if use_llm and not settings.llm_base_url else "loading"
    with contextlib.ExitStack() as stack:
        with err_console.status(f"{what} …"):
            rec = stack.enter_context(Recommender(settings, use_llm=use_llm))
        yield rec


def settings_from(ctx: typer.Context, **flags: object) -> Settings:
    """Settings with the global and command flags (only those given) on top."""
    given = {k: v for k, v in flags.items() if v is not None}  # an unset flag keeps the global
    overrides = {k: v for k, v in {**(ctx.obj or {}), **given}.items() if v is not None}
    with clean_errors():
        return Settings(**overrides)


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(help="Data directory (RECPILOT_HOME).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name (RECPILOT_DATASET).")] = None,
) -> None:
    """recpilot: an LLM agent that controls a recommender funnel."""
    ctx.obj = {"home": home, "dataset": dataset}


# -- data ---------------------------------------------------------------------------------
@data_app.command("fetch")
def data_fetch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset to fetch: movielens-100k.")],
    from_path: Annotated[
        Path | None, typer.Option("--from", help="A local zip or folder instead of downloading.")
    ] = None,
    as_name: Annotated[
        str | None, typer.Option("--as", help="Store it under another dataset name.")
    ] = None,
    item_text: Annotated[
        Path | None,
        typer.Option(help="A file with item_id and text columns to join as item text."),
    ] = None,
) -> None:
    """Download a public dataset (checksum-verified) into the data directory."""
    if name != "movielens-100k":
        err_console.print(f"[red]error:[/] unknown dataset {name!r}; known: movielens-100k")
        raise typer.Exit(2)
    settings = settings_from(ctx, dataset=as_name or name)
    with clean_errors():
        meta = fetch_movielens_100k(settings.dataset_dir, from_path, progress=console.print)
        counts = add_item_text(settings.dataset_dir, item_text) if item_text else None
    console.print(
        f"[green]{meta.name}[/]: {meta.n_items} items, {meta.n_users} users, "
        f"{meta.n_interactions} interactions from {meta.source} → {settings.dataset_dir}"
    )
    if counts:
        console.print(
            f"item text for {counts['matched']} items from {item_text} "
            f"({counts['unknown']} unknown ids ignored)"
        )


def column_maps(pairs: list[str] | None, option: str) -> dict[str, dict[str, str]]:
    """``[prefix:]canonical=yours`` pairs → ``{"": {...}, "items": {...}, ...}``.

    Raises:
        typer.Exit: a malformed pair (code 2, the message says the form).
    """
    maps: dict[str, dict[str, str]] = {}
    for pair in pairs or []:
        if "=" not in pair:
            err_console.print(
                f"[red]error:[/] {option} wants canonical=yours (optionally items:, "
                f"interactions: or text: first), got {pair!r}"
            )
            raise typer.Exit(2)
        key, value = pair.split("=", 1)
        prefix, _, canonical = key.rpartition(":")
        if prefix not in ("", "items", "interactions", "text"):
            err_console.print(
                f"[red]error:[/] {option} {pair!r}: the file prefix is items:, "
                "interactions: or text:"
            )
            raise typer.Exit(2)
        maps.setdefault(prefix, {})[canonical.strip()] = value.strip()
    return maps


ColumnOption = Annotated[
    list[str] | None,
    typer.Option(
        help="Column map canonical=yours for both files, e.g. user_id=userId; prefix with "
        "items: or interactions: for one file (repeatable)."
    ),
]


@data_app.command("ingest")
def data_ingest(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Name for the dataset.")],
    items: Annotated[Path, typer.Option(help="Items file (delimited text or Parquet).")],
    interactions: Annotated[
        Path, typer.Option(help="Interactions file (delimited text or Parquet).")
    ],
    column: ColumnOption = None,
    items_column: Annotated[
        list[str] | None,
        typer.Option(help="Column map of the items file only, e.g. item_id=id (repeatable)."),
    ] = None,
    interactions_column: Annotated[
        list[str] | None,
        typer.Option(help="Column map of the interactions file only (repeatable)."),
    ] = None,
    item_text: Annotated[
        Path | None,
        typer.Option(help="A file with item_id and text columns joined as the items' text."),
    ] = None,
    text_column: Annotated[
        list[str] | None,
        typer.Option(help="Column map of the --item-text file, e.g. text=summary."),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(help="Field separator of text files (default: by extension, else sniffed)."),
    ] = None,
    item_noun: Annotated[
        str, typer.Option(help="What one item is called in replies: movie, song, book …")
    ] = "item",
    liked: Annotated[
        str | None,
        typer.Option(
            help="What counts as liked: any, min-rating:<r>, or top-share:<0-1> (play "
            "counts in the rating column). Default: from the ratings."
        ),
    ] = None,
    category_sep: Annotated[str, typer.Option(help="Separator in the categories column.")] = "|",
    encoding: Annotated[str, typer.Option(help="Text encoding of text files.")] = "utf-8",
) -> None:
    """Ingest your own items and interactions files (schema in the README)."""
    settings = settings_from(ctx, dataset=name)
    maps = column_maps(column, "--column")
    per_file = {
        kind: {**maps.get(kind, {}), **column_maps(extra, option).get("", {})}
        for kind, extra, option in (
            ("items", items_column, "--items-column"),
            ("interactions", interactions_column, "--interactions-column"),
            ("text", text_column, "--text-column"),
        )
    }
    with clean_errors():
        rule = LikedRule.parse(liked) if liked else None
        meta = ingest(
            items,
            interactions,
            settings.dataset_dir,
            name,
            maps.get("", {}),
            category_sep,
            encoding,
            item_columns=per_file["items"],
            interaction_columns=per_file["interactions"],
            delimiter=delimiter,
            item_text=item_text,
            text_columns=per_file["text"],
            item_noun=item_noun,
            liked=rule,
        )
    text = f", {meta.n_items_with_text} with text" if meta.n_items_with_text else ""
    liked = meta.liked.kind if meta.liked else "-"
    console.print(
        f"[green]{meta.name}[/]: {meta.n_items} {meta.item_noun}s{text}, {meta.n_users} "
        f"users, {meta.n_interactions} interactions (liked: {liked}) → {settings.dataset_dir}"
    )


@data_app.command("add-text")
def data_add_text(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file with item_id and text columns.")],
    text_column: Annotated[
        list[str] | None,
        typer.Option(help="Column map of the file, e.g. text=summary (repeatable)."),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(help="Field separator (default: by extension, else sniffed)."),
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding.")] = "utf-8",
) -> None:
    """Join item text (descriptions, plot summaries) into the active dataset's items."""
    settings = settings_from(ctx)
    maps = column_maps(text_column, "--text-column")
    with clean_errors():
        counts = add_item_text(settings.dataset_dir, path, maps.get("", {}), encoding, delimiter)
    console.print(
        f"[green]{settings.dataset}[/]: text for {counts['matched']} items "
        f"({counts['items_with_text']} now have text; {counts['unknown']} rows with unknown "
        f"ids and {counts['empty']} empty texts ignored). Run `recpilot index` to embed it."
    )


# -- index / train ----------------------------------------------------------------------
def build_index(settings: Settings, out: Console = console) -> int:
    """The index workflow (:func:`recpilot.data.item_index.build_index`) with a progress
    bar; returns the item count."""
    columns = [*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=out) as bar:
        task = bar.add_task("embedding items", total=None)
        return index_items(
            settings, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )


def train_model(
    settings: Settings, out: Console = console, tune: bool = False
) -> dict[str, Scorer]:
    """The train workflow (:func:`recpilot.funnel.training.train_models`) with status lines.

    With ``tune``, ALS and hybrid hyper-parameters are first chosen on each user's
    validation item (:func:`recpilot.evals.tuning.tune_on_validation`); the final model
    is then fitted on every interaction.

    Returns:
        ``{scorer kind: fitted scorer}`` (the coarse kind first).

    Raises:
        ValueError: with ``tune``, the dataset is too small to split; an unknown kind.
    """
    params = None
    if tune:
        from recpilot.evals.tuning import tune_on_validation

        with out.status("tuning on validation items (ALS and hybrid grids)"):
            settings, chosen = tune_on_validation(settings)
        params = {"hybrid": chosen.hybrid}
        out.print(
            f"validation NDCG@10: ALS {chosen.als_metrics['NDCG@10']:.4f} "
            f"({chosen.als.model_dump()}), hybrid {chosen.hybrid_metrics['NDCG@10']:.4f}"
        )
    with out.status(f"training {', '.join(selected_kinds(settings))}"):
        return train_models(settings, params)


@app.command()
def index(ctx: typer.Context) -> None:
    """Build the Chroma index of item-text embeddings for the active dataset."""
    settings = settings_from(ctx)
    started = time.perf_counter()
    with clean_errors():
        n = build_index(settings)
    secs = time.perf_counter() - started
    console.print(f"[green]indexed[/] {n} items in {secs:.1f} s ({n / secs:.0f} items/s)")


@app.command()
def train(
    ctx: typer.Context,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Choose ALS and hybrid hyper-parameters on validation items first "
            "(~1 min on MovieLens 100K).",
        ),
    ] = False,
) -> None:
    """Train the coarse model (ALS + co-visitation + recent popularity) on the dataset."""
    settings = settings_from(ctx)
    started = time.perf_counter()
    with clean_errors():
        fitted = train_model(settings, tune=tune)
        record = json.loads((settings.models_dir / RECORD_FILE).read_text())["kinds"]
    for kind in fitted:
        size = record[kind]
        console.print(
            f"[green]trained[/] {kind} on {size['users']} users × {size['items']} items "
            f"({size['interactions']} interactions) in {size['fit_seconds']:.1f} s"
        )
    console.print(
        f"→ {settings.models_dir} in {time.perf_counter() - started:.1f} s "
        f"(coarse model: {settings.coarse_model}, recall model: "
        f"{settings.recall_model or settings.coarse_model})"
    )


# -- recommend / chat -------------------------------------------------------------------
def constraints_from(
    exclude_genre: list[str] | None,
    genre: list[str] | None,
    year_min: int | None,
    year_max: int | None,
) -> Constraints:
    """Constraints from the command's flags."""
    return Constraints(
        include_categories=genre or [],
        exclude_categories=exclude_genre or [],
        year_min=year_min,
        year_max=year_max,
    )


@app.command()
def recommend(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", "-u", help="User id.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many items.")] = 10,
    message: Annotated[str | None, typer.Option("--message", "-m", help="What you want.")] = None,
    genre: Annotated[list[str] | None, typer.Option(help="Only these genres.")] = None,
    exclude_genre: Annotated[list[str] | None, typer.Option(help="Never these genres.")] = None,
    year_min: Annotated[int | None, typer.Option(help="Earliest release year.")] = None,
    year_max: Annotated[int | None, typer.Option(help="Latest release year.")] = None,
    fine_mode: FineModeOpt = None,
    sample_generation: SampleGenOpt = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Run without any LLM.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recommend k items for a user (and/or a message), through the whole funnel."""
    from recpilot.cli.render import print_result

    settings = settings_from(ctx)
    with clean_errors():
        cons = constraints_from(exclude_genre, genre, year_min, year_max)
        with open_recommender(settings, not no_llm) as rec, err_console.status("recommending …"):
            result = rec.run(
                user,
                message,
                k,
                cons,
                fine_mode,
                sample_generation=sample_generation,  # type: ignore[arg-type]
            )
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print_result(console, result)


@app.command()
def chat(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", "-u", help="User id.")] = None,
    thread: Annotated[str | None, typer.Option(help="Thread id to start or resume.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100)] = 10,
    fine_mode: FineModeOpt = None,
    sample_generation: SampleGenOpt = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Run without any LLM.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print each turn as JSON.")] = False,
) -> None:
    """Multi-turn chat; constraints you state keep applying for the rest of the thread."""
    from recpilot.cli.render import print_result

    settings = settings_from(ctx)
    thread_id = thread or f"chat-{uuid.uuid4().hex[:8]}"
    with clean_errors(), open_recommender(settings, not no_llm) as rec:
        if not as_json:
            console.print(f"thread [bold]{thread_id}[/] — type a request, or 'exit'.")
        while True:
            try:
                line = input("> " if not as_json else "").strip()
            except EOFError:
                break
            if line.lower() in {"exit", "quit", ":q"}:
                break
            if not line:
                continue
            with err_console.status("recommending …"):
                result = rec.run(
                    user, line, k, None, fine_mode,  # type: ignore[arg-type]
                    thread_id=thread_id, sample_generation=sample_generation,
                )  # fmt: skip
            if as_json:
                print(result.model_dump_json())
            else:
                print_result(console, result)


# -- quickstart ---------------------------------------------------------------------------
@app.command()
def quickstart(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u")] = "196",
    k: Annotated[int, typer.Option("-k", min=1, max=100)] = 10,
    from_path: Annotated[Path | None, typer.Option("--from", help="Local ml-100k copy.")] = None,
    fine_mode: FineModeOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fetch MovieLens 100K, index, train and recommend — each step only if needed."""
    from recpilot.cli.render import print_result

    settings = settings_from(ctx, dataset="movielens-100k")
    out = err_console if as_json else console  # keep stdout pure JSON with --json
    with clean_errors():
        if not (settings.dataset_dir / "meta.json").exists():
            out.rule("1/4 data")
            fetch_movielens_100k(settings.dataset_dir, from_path, progress=out.print)
        if not index_is_current(settings):
            out.rule("2/4 index")
            build_index(settings, out)
        if not is_trained(settings):
            out.rule("3/4 train")
            train_model(settings, out)
        out.rule("4/4 recommend (starting the embedded LLM if needed)")
        with open_recommender(settings, True) as rec, err_console.status("recommending …"):
            result = rec.run(user, None, k, None, fine_mode)  # type: ignore[arg-type]
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print_result(console, result)
    if not read_meta(settings.dataset_dir).n_items_with_text:
        out.print(
            "[dim]tip: the items have no text (plots, descriptions); add some with "
            "`recpilot data add-text FILE` (columns item_id,text), then `recpilot index`, "
            "for content-based recall (see the README's 'Your own data').[/]"
        )


# -- eval ---------------------------------------------------------------------------------
@app.command("eval")
def eval_command(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option(help="Dataset to evaluate.")] = None,
    users: Annotated[int, typer.Option(min=0, help="Users for the LLM pipelines.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of every sample.")] = 0,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Skip the LLM pipelines.")] = False,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    max_users: Annotated[
        int | None, typer.Option(min=1, help="Cap on users for non-LLM pipelines.")
    ] = None,
    fine_mode: Annotated[
        list[str] | None, typer.Option(help="LLM fine modes to run (default: both).")
    ] = None,
    sampled: Annotated[bool, typer.Option(help="Also run the sampled protocols.")] = True,
    llm_sampled_users: Annotated[
        int, typer.Option(min=0, help="Of the LLM users, how many run the sampled protocols.")
    ] = 10,
    tune: Annotated[bool, typer.Option(help="Tune the coarse models on validation.")] = True,
    tune_fine_users: Annotated[
        int, typer.Option(min=0, help="Validation users to tune fine_weight on (0: no).")
    ] = 0,
    cold_users: Annotated[int, typer.Option(min=0, help="Users in the cold-start slice.")] = 100,
    cold_llm_users: Annotated[
        int, typer.Option(min=0, help="Cold-start users also run through the LLM.")
    ] = 0,
    min_user: Annotated[int, typer.Option(min=3, help="k-core: interactions per user.")] = 5,
    min_item: Annotated[int, typer.Option(min=1, help="k-core: interactions per item.")] = 5,
    split: Annotated[
        str,
        typer.Option(
            help="Hold-out order: auto (by time when timestamps are real, else a seeded "
            "random item per user), time (force the timestamp / file-row order), random."
        ),
    ] = "auto",
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse the LLM runs already saved in --out.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes for the non-LLM runs (default: one per usable core); "
            "the numbers do not depend on it.",
        ),
    ] = None,
) -> None:
    """Offline evaluation: leave-one-out, full and sampled ranking, every pipeline."""

    from recpilot.evals.harness import EvalConfig, default_out_dir, run_eval
    from recpilot.evals.harness import Progress as EvalProgress
    from recpilot.evals.report import write_outputs

    settings = settings_from(ctx, dataset=dataset)
    if resume and out is None:
        err_console.print("[red]error:[/] --resume needs --out (the folder of the run to resume)")
        raise typer.Exit(2)
    out_dir = out or default_out_dir(settings)
    if resume and not out_dir.is_dir():
        err_console.print(f"[red]error:[/] --resume: {out_dir} is not a folder of an earlier run")
        raise typer.Exit(2)
    from recpilot.evals.parallel import usable_jobs

    cores = usable_jobs()
    if jobs is not None and jobs > cores:
        err_console.print(
            f"[dim]note: --jobs {jobs} is more than the {cores} usable core(s): "
            "the extra workers share them (no faster, same numbers)[/]"
        )
    created = make_out_dir(out_dir)
    with clean_errors(), stop_on_interrupt(out_dir, created):
        config = EvalConfig(
            dataset=settings.dataset,
            seed=seed,
            users=users,
            max_users=max_users,
            llm=not no_llm,
            fine_modes=fine_mode or ["pointwise", "listwise"],
            sampled=sampled,
            llm_sampled_users=llm_sampled_users,
            tune=tune,
            tune_fine_users=tune_fine_users,
            cold_users=cold_users,
            cold_llm_users=cold_llm_users,
            min_user=min_user,
            min_item=min_item,
            split=split,
            out_dir=out_dir,
            resume=resume,
            jobs=jobs,
        )
        columns = [*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
            hooks = EvalProgress(
                start=lambda label, total: bar.add_task(label, total=total),
                advance=lambda task: bar.advance(task),
                done=lambda task: bar.update(
                    task, completed=next(t.total for t in bar.tasks if t.id == task)
                ),
                update=lambda task, done, total: bar.update(task, completed=done, total=total),
            )
            results = run_eval(settings, config, hooks, command=["recpilot", *sys.argv[1:]])
        paths = write_outputs(results, out_dir)

    full = results["results"]["full"]
    for name, m in full.items():
        console.print(
            f"{escape(name):45s} NDCG@10 {m['NDCG@10']:.4f}  HR@10 {m['HR@10']:.4f}  n={m['users']}"
        )
    console.print(f"[green]report[/]: {paths['markdown']}")


from recpilot.cli import cold_start, content, eval_agent, eval_chat, profile  # noqa: E402  (they use this module)
from recpilot.cli import llm as llm_commands  # noqa: E402

llm_commands.register(app)
profile.register(app)
cold_start.register(app)
eval_chat.register(app)
eval_agent.register(app)
content.register(app)

if __name__ == "__main__":
    app()
