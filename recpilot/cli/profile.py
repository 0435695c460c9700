"""``recpilot profile …`` and ``recpilot feedback``: the long-term user memory from the shell.

Registered on the main app by ``recpilot.cli.main`` (``register(app)``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from recpilot.config.settings import Settings

profile_app = typer.Typer(no_args_is_help=True, help="Long-term user profiles.")


def _cli():  # imported lazily: cli imports this module
    from recpilot.cli import main as cli

    return cli


def _catalogue(settings: Settings):
    """The active dataset's catalogue, or None if it is not there (titles then unknown)."""
    from recpilot.data.catalogue import Catalogue

    try:
        return Catalogue.load(settings.dataset_dir)
    except FileNotFoundError:
        return None


def _titles(catalogue, ids: list[str]) -> list[str]:
    if catalogue is None:
        return ids
    return [f"{catalogue.get(i).title} [{i}]" if catalogue.has(i) else i for i in ids]


@profile_app.command("show")
def profile_show(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="User id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print what recpilot remembers about a user."""
    from recpilot.agent.profile_ops import show_profile

    cli = _cli()
    settings = cli.settings_from(ctx)
    with cli.clean_errors():
        profile = show_profile(settings, user)
    if as_json:
        print(profile.model_dump_json(indent=2))
        return
    if profile.is_empty():
        cli.console.print(f"nothing stored for user {profile.user_id}")
        return
    catalogue = _catalogue(settings)
    table = Table(title=f"profile of user {profile.user_id}", show_header=False)
    table.add_row("liked", "; ".join(_titles(catalogue, profile.liked)) or "-")
    table.add_row("disliked", "; ".join(_titles(catalogue, profile.disliked)) or "-")
    table.add_row("avoids", ", ".join(profile.avoid_categories) or "-")
    table.add_row("asked for", "; ".join(profile.preferences) or "-")
    attrs = ", ".join(f"{k}={v}" for k, v in profile.attributes.items())
    table.add_row("attributes", attrs or "-")
    table.add_row("summary", profile.summary or "- (recpilot profile summarize)")
    table.add_row("updated", profile.updated_at)
    cli.console.print(table)


@profile_app.command("forget")
def profile_forget(
    ctx: typer.Context, user: Annotated[str, typer.Argument(help="User id.")]
) -> None:
    """Delete everything stored about a user: profile, chat threads, traces, feedback."""
    from recpilot.agent.profile_ops import forget_user

    cli = _cli()
    settings = cli.settings_from(ctx)
    with cli.clean_errors():
        gone = forget_user(settings, user)
    if not (gone.profile_items or gone.threads or gone.traces or gone.feedback_rows):
        cli.console.print(f"nothing stored for user {gone.user_id}")
        return
    threads = f" ({', '.join(gone.threads)})" if gone.threads else ""
    cli.console.print(
        f"forgot user {gone.user_id}: deleted {gone.profile_items} profile item(s), "
        f"{len(gone.threads)} chat thread(s){threads}, {gone.traces} trace(s) and "
        f"{gone.feedback_rows} feedback row(s)",
        soft_wrap=True,  # one line, whatever the terminal width
    )


@profile_app.command("summarize")
def profile_summarize(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="User id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
) -> None:
    """Have the LLM write the user's interest summary from their history (stored)."""
    from recpilot.agent.profile_ops import summarize_user

    cli = _cli()
    settings = cli.settings_from(ctx)
    with cli.clean_errors(), cli.open_recommender(settings, True) as rec:
        assert rec.services is not None and rec.services.llm is not None
        profile = summarize_user(settings, rec.services.catalogue, rec.services.llm, user)
    if as_json:
        print(profile.model_dump_json(indent=2))
    else:
        cli.console.print(f"[bold]{profile.user_id}[/]: {profile.summary}")


def feedback(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="User id.")],
    item: Annotated[str, typer.Option("--item", "-i", help="Catalogue item id.")],
    like: Annotated[bool, typer.Option("--like/--dislike", help="Liked or disliked it.")],
) -> None:
    """Record explicit feedback on an item in the user's profile."""
    from recpilot.agent.profile_ops import record_feedback

    cli = _cli()
    settings = cli.settings_from(ctx)
    with cli.clean_errors():
        profile = record_feedback(settings, user, item, like)
    verb = "likes" if like else "dislikes"
    cli.console.print(
        f"user {profile.user_id} {verb} item {item} "
        f"({len(profile.liked)} liked, {len(profile.disliked)} disliked in the profile)"
    )


def register(app: typer.Typer) -> None:
    """Add ``profile`` (group) and ``feedback`` (command) to the main CLI app."""
    app.add_typer(profile_app, name="profile")
    app.command("feedback")(feedback)
