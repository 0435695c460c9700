"""Load benchmark of the HTTP service's ``POST /v1/recommend``: requests/s, p50/p95 latency.

Starts the real service (uvicorn on 127.0.0.1, a free port, in this process) on the data
directory of ``RECPILOT_HOME`` with the real LLM (the embedded server unless
``RECPILOT_LLM_BASE_URL`` is set), then sends requests for random warm users of the
dataset from ``--concurrency`` client threads (httpx), per fine-ranking mode:

- ``off``: no LLM fine ranking. With ``--planner rules`` no LLM call at all: the number
  is the orchestration overhead (HTTP, validation, LangGraph, recall, coarse ranking,
  trace recording).
- ``listwise`` / ``pointwise``: the LLM fine stage on (one listwise call, or one call per
  candidate).

Run it under the shared LLM lock (it starts the embedded model)::

    flock /tmp/recpilot-llm.lock python -m recpilot.evals.bench_service \\
        --planner rules --mode off:200 --mode listwise:12 --concurrency 2

Latencies are client-side (request sent → response parsed), in milliseconds; the
service runs one graph turn at a time (one LLM), so concurrency beyond the core count
only queues requests.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from typing import Any

import httpx
import numpy as np

from recpilot.config.settings import Settings


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100, linear interpolation) of ``values``."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


def load(
    url: str,
    key: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
) -> dict[str, Any]:
    """Send ``bodies`` to ``url/v1/recommend`` from ``concurrency`` threads.

    Args:
        url: the service's base URL.
        key: an accepted API key.
        bodies: request bodies, each sent once.
        concurrency: client threads (≥ 1).

    Returns:
        ``{"requests", "errors", "seconds", "rps", "p50_ms", "p95_ms", "mean_ms",
        "server_ms_median", "llm_calls_mean"}`` (``server_ms`` is the graph time the
        service reports, so ``p50_ms - server_ms_median`` ≈ HTTP + serialisation).
    """
    latencies: list[float] = []
    server_ms: list[float] = []
    llm_calls: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    todo = list(bodies)

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=600) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    body = todo.pop()
                started = time.perf_counter()
                r = client.post("/v1/recommend", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if r.status_code != 200:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                        continue
                    out = r.json()
                    latencies.append(elapsed)
                    server_ms.append(out["total_ms"])
                    llm_calls.append(out["llm"]["calls"])

    threads = [threading.Thread(target=worker) for _ in range(max(1, concurrency))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    ok = len(latencies)
    return {
        "requests": len(bodies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "seconds": round(seconds, 2),
        "rps": round(ok / seconds, 2) if seconds else 0.0,
        "p50_ms": round(percentile(latencies, 50), 1) if ok else None,
        "p95_ms": round(percentile(latencies, 95), 1) if ok else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if ok else None,
        "server_ms_median": round(statistics.median(server_ms), 1) if ok else None,
        "llm_calls_mean": round(statistics.fmean(llm_calls), 2) if ok else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point; prints a Markdown table and returns the results."""
    import secrets

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mode",
        action="append",
        default=None,
        help="fine mode and request count, e.g. off:200 or listwise:12 (repeatable)",
    )
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--planner", choices=["rules", "llm"], default="rules")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests per mode")
    parser.add_argument("--no-llm", action="store_true", help="serve without any LLM")
    parser.add_argument("--json", dest="json_out", default=None, help="also write JSON here")
    args = parser.parse_args(argv)
    modes = []
    for spec in args.mode or ["off:200", "listwise:12"]:
        name, _, count = spec.partition(":")
        if name not in ("off", "listwise", "pointwise") or not count.isdigit():
            parser.error(f"--mode wants off|listwise|pointwise:COUNT, got {spec!r}")
        modes.append((name, int(count)))

    from recpilot.service.background import serve_in_thread

    key = secrets.token_urlsafe(12)
    base = Settings()
    settings = base.model_copy(update={"api_keys": [key], "planner": args.planner})
    rng = random.Random(args.seed)
    results: dict[str, Any] = {
        "planner": args.planner,
        "concurrency": args.concurrency,
        "k": args.k,
        "dataset": settings.dataset,
        "llm": "none" if args.no_llm else (settings.llm_base_url or "embedded"),
        "modes": {},
    }
    with serve_in_thread(settings, use_llm=not args.no_llm) as url:
        from recpilot.data.catalogue import Catalogue

        users = sorted(Catalogue.load(settings.dataset_dir).interactions["user_id"].unique())
        for name, count in modes:

            def body(user: str, mode: str = name) -> dict[str, Any]:
                return {"user_id": user, "k": args.k, "fine_mode": mode}

            load(url, key, [body(rng.choice(users)) for _ in range(args.warmup)], 1)
            bodies = [body(rng.choice(users)) for _ in range(count)]
            results["modes"][name] = load(url, key, bodies, args.concurrency)
    print(
        f"planner={args.planner}, concurrency={args.concurrency}, k={args.k}, "
        f"dataset={settings.dataset}, LLM={results['llm']}"
    )
    print(
        "| fine stage | requests | errors | req/s | p50 ms | p95 ms | graph ms (median) "
        "| LLM calls/req |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results["modes"].items():
        print(
            f"| {name} | {r['requests']} | {r['errors']} | {r['rps']} | {r['p50_ms']} "
            f"| {r['p95_ms']} | {r['server_ms_median']} | {r['llm_calls_mean']} |"
        )
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
