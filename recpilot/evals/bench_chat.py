"""The chat benchmark: turn time, time to first items and LLM calls per turn of the agent.

Run on the embedded model (after ``recpilot quickstart``), holding the LLM lock::

    flock /tmp/recpilot-llm.lock .venv/bin/python -m recpilot.evals.bench_chat \\
        [--conversations 12] [--controller llm] [--fine-mode off]

It replays the first ``--conversations`` threads of the labelled conversation set
(:mod:`recpilot.evals.agent`) through :class:`~recpilot.agent.runner.Recommender` and
reports, over all turns: p50/p95 turn time (s), time to first items (s: from the
turn's start to the end of coarse ranking, when the items exist — what the SSE stream
sends first), LLM calls and tokens per turn, and the controller call's time on its
first (cold) call versus later ones. ``--prefix`` additionally measures the prompt
prefix cache: the same controller calls with the static part first (as recpilot sends
them) and with the turn's part first (no shared prefix). Writes
``RECPILOT_HOME/evals/bench_chat.json``. Timings depend on the machine's load: report
them with ``uptime``'s load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import Any

from recpilot.agent.nodes.controller import system_prompt, turn_prompt
from recpilot.agent.runner import Recommender
from recpilot.agent.tools import calls_schema
from recpilot.config.settings import Settings
from recpilot.evals.agent.run import load_set
from recpilot.evals.bench_funnel import percentiles
from recpilot.stores.traces.recorder import NodeTrace

PREFIX_MESSAGES = [
    "comedies from the 90s please", "what is Fargo about?", "I've seen the first one",
    "something newer", "hello", "compare Alien and Aliens",
]  # fmt: skip


def measure_turns(rec: Recommender, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """Replay the conversations; per-turn times (s), first items (s), LLM calls."""
    turn_s, first_s, calls, ptok, ctok, ctl_ms = [], [], [], [], [], []
    for conv in conversations:
        thread = f"bench-chat-{conv['id']}-{uuid.uuid4().hex[:6]}"
        for turn in conv["turns"]:
            marks: dict[str, float] = {}

            def seen(node: NodeTrace, marks: dict[str, float] = marks) -> None:
                if node.node == "coarse":
                    marks["first"] = node.end_ms

            result = rec.run(conv.get("user"), turn["say"], 10, thread_id=thread, on_node=seen)
            turn_s.append(result.total_ms / 1000)
            if "first" in marks:
                first_s.append(marks["first"] / 1000)
            calls.append(result.llm.calls)
            ptok.append(result.llm.prompt_tokens)
            ctok.append(result.llm.completion_tokens)
            ctl = next((s for s in result.stages if s["stage"] == "controller"), None)
            if ctl is not None and (result.controller or {}).get("source") == "llm":
                ctl_ms.append(ctl["ms"])
    n = len(turn_s)
    return {
        "turns": n,
        "turn_seconds": percentiles(turn_s),
        "first_items_seconds": percentiles(first_s) if first_s else None,
        "funnel_turns": len(first_s),
        "llm_calls_per_turn": round(sum(calls) / n, 2),
        "prompt_tokens_per_turn": round(sum(ptok) / n, 1),
        "completion_tokens_per_turn": round(sum(ctok) / n, 1),
        "controller_ms_first": round(ctl_ms[0], 1) if ctl_ms else None,
        "controller_ms_later": percentiles(ctl_ms[1:]) if len(ctl_ms) > 1 else None,
    }


def measure_prefix(rec: Recommender) -> dict[str, Any]:
    """Controller calls with the static prompt first vs the turn's part first (ms)."""
    assert rec.services is not None and rec.services.llm is not None
    llm, cat = rec.services.llm, rec.services.catalogue
    system = system_prompt("movie", tuple(cat.category_vocabulary()))
    schema = calls_schema(cat.category_vocabulary())
    out: dict[str, Any] = {}
    for order in ("static_first", "turn_first"):
        times = []
        for message in PREFIX_MESSAGES:
            turn = turn_prompt(message, [], None)
            if order == "static_first":
                msgs = [{"role": "system", "content": system}, {"role": "user", "content": turn}]
            else:
                msgs = [{"role": "system", "content": turn + "\n\n" + system},
                        {"role": "user", "content": "Answer."}]  # fmt: skip
            started = time.perf_counter()
            try:
                llm.json(msgs, schema, "bench_prefix", 120)
            except Exception:  # noqa: BLE001 - a failed answer still took its time
                pass
            times.append((time.perf_counter() - started) * 1000)
        out[order] = {"first_ms": round(times[0], 1), "later_ms": percentiles(times[1:])}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """CLI entry point (see the module docstring); returns what it wrote."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=12)
    parser.add_argument("--controller", choices=["llm", "rules"], default="llm")
    parser.add_argument("--controller-call", choices=["json_schema", "tool_calls"], default=None)
    parser.add_argument("--fine-mode", choices=["off", "pointwise", "listwise"], default=None)
    parser.add_argument("--prefix", action="store_true", help="Also measure the prefix cache.")
    args = parser.parse_args(argv)
    update: dict[str, Any] = {"controller": args.controller}
    if args.fine_mode:
        update["fine_mode"] = args.fine_mode
    if args.controller_call:
        update["controller_call"] = args.controller_call
    settings = Settings().model_copy(update=update)
    convs = load_set()[: args.conversations]
    with Recommender(settings, use_llm=args.controller == "llm") as rec:
        report: dict[str, Any] = {
            "settings": update | {"fine_mode": settings.fine_mode,
                                  "controller_call": settings.controller_call},
            "load_average": os.getloadavg(),
            "turns": measure_turns(rec, convs),
        }  # fmt: skip
        if args.prefix and args.controller == "llm":
            report["prefix"] = measure_prefix(rec)
        report["load_average_after"] = os.getloadavg()
    path = settings.home / "evals" / "bench_chat.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
