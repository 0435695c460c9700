"""Benchmark: a full ``recpilot eval --no-llm`` of a 2.8k-item, 1.9k-user implicit catalogue.

Issue 12's target: the no-LLM eval of such a catalogue (no timestamps, play counts)
runs in under 5 minutes on 2 cores. Run::

    .venv/bin/python -m recpilot.evals.bench_eval [--source ../shared/data/ml-latest-small]

Steps, each timed end to end as a user would run them (the ``recpilot`` CLI in a
subprocess, in a data directory of its own, ``RECPILOT_HOME/bench-eval`` unless
``--home``):

1. build the catalogue from MovieLens latest-small
   (:func:`recpilot.evals.bench_eval_data.build_music_like`);
2. ``recpilot data ingest --liked top-share:0.5`` (the normal ingest);
3. ``recpilot index`` (MiniLM embeddings into Chroma);
4. ``recpilot train``;
5. ``recpilot eval --no-llm`` (every default: tuning, full + 2 sampled protocols, the
   100-user cold-start slice), with its own per-phase clock from ``results.json``
   (``timing_s``: load, tune, validation, test, cold).

Prints a table and writes every number (with ``os.getloadavg()`` before and after, as
the cores may be shared) to ``<home>/bench-eval.json``. The target is checked on
step 5's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from recpilot.config.settings import Settings
from recpilot.evals.bench_eval_data import N_ITEMS, N_USERS, PER_USER, build_music_like

DATASET = "bench-music-like"
TARGET_S = 300.0


def default_source() -> Path:
    """``$RECPILOT_SHARED_DATA/ml-latest-small``, else ``../shared/data/ml-latest-small``
    beside the checkout."""
    shared = os.environ.get("RECPILOT_SHARED_DATA")
    root = Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared" / "data"
    return root / "ml-latest-small"


def run_cli(home: Path, args: list[str]) -> float:
    """Run ``recpilot --home HOME --dataset bench-music-like ARGS``; wall seconds.

    Raises:
        RuntimeError: the command failed (its stderr tail is in the message).
    """
    cmd = [sys.executable, "-m", "recpilot.cli", "--home", str(home), "--dataset", DATASET]
    started = time.perf_counter()
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def run_benchmark(
    source: Path, home: Path, n_items: int, n_users: int, per_user: int, seed: int
) -> dict[str, Any]:
    """Build, ingest, index, train and evaluate; every step's wall seconds.

    Returns:
        ``{"load_before", "load_after", "dataset": {...}, "steps_s": {...},
        "eval_phases_s": results.json's timing_s, "eval_s", "target_s", "met",
        "headline": {pipeline: {"NDCG@10", "HR@10"}}, "split"}``.
    """
    home.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()]}
    steps: dict[str, float] = {}
    t = time.perf_counter()
    items, inter = build_music_like(source, home / "bench-source", n_items, n_users, per_user, seed)
    steps["build"] = time.perf_counter() - t
    steps["ingest"] = run_cli(home, [
        "data", "ingest", "--name", DATASET, "--items", str(items), "--interactions", str(inter),
        "--liked", "top-share:0.5", "--item-noun", "movie",
    ])  # fmt: skip
    steps["index"] = run_cli(home, ["index"])
    steps["train"] = run_cli(home, ["train"])
    eval_dir = home / "evals" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    steps["eval"] = run_cli(home, ["eval", "--no-llm", "--out", str(eval_dir)])
    results = json.loads((eval_dir / "results.json").read_text(encoding="utf-8"))
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out["dataset"] = {k: results["dataset"][k] for k in ("n_items", "n_users", "n_interactions")}
    out["split"] = {k: results["split"].get(k) for k in ("order", "users", "universe_items")}
    out["steps_s"] = {k: round(v, 1) for k, v in steps.items()}
    out["eval_phases_s"] = results["timing_s"]
    out["eval_jobs"] = results.get("jobs")  # worker processes the eval used
    out["eval_s"] = round(steps["eval"], 1)
    out["target_s"] = TARGET_S
    out["met"] = steps["eval"] < TARGET_S
    out["headline"] = {
        name: {"NDCG@10": m["NDCG@10"], "HR@10": m["HR@10"]}
        for name, m in results["results"]["full"].items()
    }
    out["eval_dir"] = str(eval_dir)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: run the benchmark, print a table, write ``<home>/bench-eval.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=default_source(),
                        help="MovieLens latest-small folder")  # fmt: skip
    parser.add_argument("--home", type=Path, default=None,
                        help="data directory (default RECPILOT_HOME/bench-eval)")  # fmt: skip
    parser.add_argument("--items", type=int, default=N_ITEMS)
    parser.add_argument("--users", type=int, default=N_USERS)
    parser.add_argument("--per-user", type=int, default=PER_USER)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    home = args.home or Settings().home / "bench-eval"
    try:
        out = run_benchmark(args.source, home, args.items, args.users, args.per_user, args.seed)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    (home / "bench-eval.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    d = out["dataset"]
    print(f"catalogue: {d['n_items']} items, {d['n_users']} users, "
          f"{d['n_interactions']} interactions; split: {out['split']['order']}")  # fmt: skip
    print("| step | seconds |\n|---|---|")
    for step, secs in out["steps_s"].items():
        print(f"| {step} | {secs} |")
    for phase, secs in out["eval_phases_s"].items():
        print(f"| eval: {phase} | {secs} |")
    verdict = "met" if out["met"] else "MISSED"
    print(f"eval --no-llm: {out['eval_s']} s (target < {TARGET_S:.0f} s: {verdict}); "
          f"load average before {out['load_before']}, after {out['load_after']}")  # fmt: skip


if __name__ == "__main__":
    main()
