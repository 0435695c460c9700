"""The main-job benchmark on MovieLens 100K: funnel latency, embedding throughput, fine ranking.

Run (after ``recpilot quickstart``, which fetches, indexes and trains)::

    .venv/bin/python -m recpilot.evals.benchmark [--requests 200] [--fine-users 5]

It prints a markdown table and writes every number to
``RECPILOT_HOME/evals/benchmark.json``. Measured:

1. the non-LLM path (recall + coarse, per request, ms; the LLM switched off) over
   ``--requests`` random users, a third of them with a text message and constraints;
2. embedding throughput (items/s) of the MiniLM int8 ONNX encoder over all item
   texts, and Chroma query latency (ms, n=100);
3. LLM fine-ranking time (seconds) of the 20-item short list, in each mode, for
   ``--fine-users`` real users through the whole graph on the embedded model (the
   planner set to rules so the fine stage is the only LLM call).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from recpilot.agent.runner import Recommender
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.data.embeddings import MiniLMEncoder
from recpilot.data.item_index import ItemIndex
from recpilot.evals.bench_embeddings import measure_query_latency, measure_throughput
from recpilot.evals.bench_funnel import measure_funnel, percentiles


def measure_fine(settings: Settings, users: list[str]) -> dict[str, Any]:
    """Fine-stage seconds per mode for ``users`` (20 candidates each), embedded LLM.

    Returns:
        ``{mode: {"users", "seconds": percentiles, "fell_back": int, "llm_calls": int,
        "prompt_tokens": int, "completion_tokens": int}}``; the first user of each mode
        is a cold prompt (nothing cached), the others share the system-prompt prefix.
    """
    out: dict[str, Any] = {}
    rules = settings.model_copy(update={"planner": "rules"})
    with Recommender(rules) as rec:
        for mode in ("pointwise", "listwise"):
            secs, fell, calls, ptok, ctok = [], 0, 0, 0, 0
            for user in users:
                result = rec.run(user, None, 10, None, mode)  # type: ignore[arg-type]
                fine = next(s for s in result.stages if s["stage"] == "fine")
                secs.append(fine["ms"] / 1000)
                fell += int(result.fine_fell_back)
                calls += result.llm.calls
                ptok += result.llm.prompt_tokens
                ctok += result.llm.completion_tokens
            out[mode] = {
                "users": len(users),
                "seconds": percentiles(secs),
                "fell_back": fell,
                "llm_calls": calls,
                "prompt_tokens": ptok,
                "completion_tokens": ctok,
            }
    return out


def markdown(results: dict[str, Any]) -> str:
    """The README table of ``results``."""
    f, e, q = results["funnel"], results["embedding"], results["chroma_query"]
    rows = [
        "| what | measured | target |",
        "|---|---|---|",
        f"| recall + coarse per request, p50 / p95 ({f['requests']} requests) | "
        f"{f['recall_coarse_ms']['p50']} / {f['recall_coarse_ms']['p95']} ms | p95 < 50 ms |",
        f"| whole graph without LLM, p50 / p95 | {f['graph_ms']['p50']} / "
        f"{f['graph_ms']['p95']} ms | |",
        f"| embedding throughput ({e['items']} item texts) | {e['items_per_s']:.0f} items/s "
        "| ≥ 400 items/s |",
        f"| Chroma query, n=100, p50 / p95 | {q['p50_ms']} / {q['p95_ms']} ms | |",
    ]
    for mode, m in results["fine"].items():
        s = m["seconds"]
        rows.append(
            f"| fine ranking, {mode}, 20 candidates, p50 / max ({m['users']} users) | "
            f"{s['p50']} / {s['max']} s ({m['llm_calls']} LLM calls, {m['fell_back']} fell back)"
            " | aim < 6 s |"
        )
    return "\n".join(rows)


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--fine-users", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = Settings(dataset="movielens-100k")
    catalogue = Catalogue.load(settings.dataset_dir)
    users = sorted(catalogue.interactions["user_id"].unique().tolist())
    texts = [catalogue.item_text(p) for p in range(len(catalogue))]

    results: dict[str, Any] = {"settings": settings.model_dump(mode="json")}
    started = time.perf_counter()
    with Recommender(settings, use_llm=False) as rec:
        results["funnel"] = measure_funnel(rec, users, args.requests, args.seed)
    encoder = MiniLMEncoder()
    results["embedding"] = measure_throughput(encoder, texts)
    index = ItemIndex.open(settings)
    results["chroma_query"] = measure_query_latency(index, encoder.encode(texts[:50]))
    fine_users = random.Random(args.seed).sample(users, args.fine_users)
    results["fine"] = measure_fine(settings, fine_users)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    path = settings.home / "evals" / "benchmark.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    print(f"\nall numbers: {path}")


if __name__ == "__main__":
    main()
