"""Run the labelled conversation set through the agent and summarise the scores.

Each conversation runs as one chat thread of :class:`~recpilot.agent.runner.Recommender`
(a fresh thread id per run, a throw-away profile store per controller so runs do not
see each other's feedback), once per controller: ``llm`` (one LLM call a turn, rules on
failure) and ``rules``. Per turn it records the tools chosen, the argument and end
checks (:mod:`recpilot.evals.agent.scoring`), the turn time (ms) and LLM calls.
"""

from __future__ import annotations

import json
import statistics
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from recpilot.agent.runner import Recommender
from recpilot.evals.agent.scoring import arg_matches, end_checks, named_in_labels

SET_NAME = "conversations.v1.jsonl"


def load_set(path: Path | None = None) -> list[dict[str, Any]]:
    """The labelled conversations (default: the set shipped with recpilot).

    Raises:
        ValueError: a line that is not a conversation object (names the line).
    """
    text = (path.read_text() if path else
            resources.files(__package__).joinpath(SET_NAME).read_text())  # fmt: skip
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        conv = json.loads(line)
        if not isinstance(conv, dict) or not isinstance(conv.get("turns"), list):
            raise ValueError(f"line {n}: not a conversation ({{'id', 'turns': [...]}})")
        out.append(conv)
    return out


class TurnScore(BaseModel):
    """One scored turn (times in ms)."""

    conversation: str
    turn: int
    controller: str
    message: str
    expected_tools: list[str]
    chosen_tools: list[str]
    source: str
    tool_ok: bool
    args_ok: int
    args_total: int
    checks: dict[str, bool]
    items: list[str]
    ms: float
    llm_calls: int
    fallbacks: int


def run_conversation(
    rec: Recommender, conv: dict[str, Any], controller: str, k: int = 10
) -> list[TurnScore]:
    """Run one conversation as a new thread; returns its scored turns."""
    catalogue = rec.services.catalogue  # type: ignore[union-attr]
    thread = f"eval-agent-{controller}-{conv['id']}-{uuid.uuid4().hex[:6]}"
    named: set[str] = set()
    shown_by_turn: list[list[str]] = []
    last_shown: list[str] = []
    out = []
    for n, turn in enumerate(conv["turns"]):
        check = turn.get("check") or {}
        named |= named_in_labels(check, catalogue, shown_by_turn)
        result = rec.run(conv.get("user"), turn["say"], k, thread_id=thread)
        chosen = {c["name"]: c["args"] for c in result.tools}
        args = turn.get("args") or {}
        ok = sum(arg_matches(key, val, chosen, last_shown, catalogue) for key, val in args.items())
        items = [i.model_dump() for i in result.items]
        checks = end_checks(check, items, catalogue, named, shown_by_turn)
        ids = [i["item_id"] for i in items]
        shown_by_turn.append(ids)
        if ids:
            last_shown = ids
        out.append(TurnScore(
            conversation=conv["id"], turn=n, controller=controller, message=turn["say"],
            expected_tools=sorted(turn["tools"]), chosen_tools=sorted(chosen),
            source=(result.controller or {}).get("source", "none"),
            tool_ok=set(turn["tools"]) == set(chosen), args_ok=ok, args_total=len(args),
            checks=checks, items=ids, ms=result.total_ms, llm_calls=result.llm.calls,
            fallbacks=len(result.fallbacks),
        ))  # fmt: skip
    return out


def summarise(turns: list[TurnScore]) -> dict[str, Any]:
    """Per-controller totals: tool accuracy, argument accuracy, end-check pass rate,
    invented ids, named items recommended back, turn time p50/p95 (ms), LLM calls/turn."""
    out: dict[str, Any] = {}
    for name in sorted({t.controller for t in turns}):
        ts = [t for t in turns if t.controller == name]
        checks = [v for t in ts for v in t.checks.values()]
        times = sorted(t.ms for t in ts)
        out[name] = {
            "turns": len(ts),
            "tool_accuracy": round(sum(t.tool_ok for t in ts) / len(ts), 3),
            "arg_accuracy": round(
                sum(t.args_ok for t in ts) / max(1, sum(t.args_total for t in ts)), 3
            ),
            "end_checks": round(sum(checks) / max(1, len(checks)), 3),
            "turns_all_checks_pass": round(sum(all(t.checks.values()) for t in ts) / len(ts), 3),
            "invented_ids": sum(not t.checks.get("no_invented_ids", True) for t in ts),
            "named_back": sum(not t.checks.get("named_absent", True) for t in ts),
            "controller_fallbacks": sum(t.source == "rules" for t in ts) if name == "llm" else 0,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1),
            "llm_calls_per_turn": round(sum(t.llm_calls for t in ts) / len(ts), 2),
        }
    return out


def markdown(summary: dict[str, Any], model: str) -> str:
    """The summary as a Markdown table (one row per controller)."""
    head = (
        "| controller | turns | tool acc. | arg acc. | end checks | turns all pass "
        "| invented ids | named back | p50 turn | p95 turn | LLM calls/turn |"
    )
    rows = [head, "|" + "---|" * 11]
    for name, s in summary.items():
        who = model if name == "llm" else "no LLM"
        rows.append(
            f"| {name} ({who}) | {s['turns']} | {s['tool_accuracy']:.3f} "
            f"| {s['arg_accuracy']:.3f} | {s['end_checks']:.3f} | {s['turns_all_checks_pass']:.3f} "
            f"| {s['invented_ids']} | {s['named_back']} | {s['p50_ms'] / 1000:.1f} s "
            f"| {s['p95_ms'] / 1000:.1f} s | {s['llm_calls_per_turn']} |"
        )
    return "\n".join(rows)


def evaluate(
    rec: Recommender,
    controller: str,
    conversations: list[dict[str, Any]],
    out_file: Path,
    progress: Any = None,
) -> list[TurnScore]:
    """Run every conversation with ``rec`` (whose settings select ``controller``),
    appending turns to ``out_file`` (JSON lines); conversations already in the file for
    that controller are skipped, so a long LLM run can be split and resumed.

    Returns:
        All turns in the file (earlier runs and other controllers included).
    """
    done: set[tuple[str, str]] = set()
    if out_file.exists():
        for line in out_file.read_text().splitlines():
            t = json.loads(line)
            done.add((t["controller"], t["conversation"]))
    for conv in conversations:
        if (controller, conv["id"]) in done:
            continue
        turns = run_conversation(rec, conv, controller)
        with out_file.open("a") as f:
            for t in turns:
                f.write(t.model_dump_json() + "\n")
        if progress:
            progress(controller, conv["id"], turns)
    return [TurnScore.model_validate_json(line) for line in out_file.read_text().splitlines()]
