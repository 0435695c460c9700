"""Memory benchmark of the HTTP service: resident memory after many requests stays flat.

Starts the real service (uvicorn on 127.0.0.1 in this process, as
:mod:`recpilot.evals.bench_service` does) on the data directory of ``RECPILOT_HOME``,
sends ``POST /v1/recommend`` for random warm users one at a time, and reads this
process's resident set size (``VmRSS`` in ``/proc/self/status``, MiB) at checkpoints:

- LLM off (``--planner rules``, no LLM at all): after ``--warmup`` requests (the
  baseline), then after each of ``--checkpoints`` (default 1,000 and 5,000 requests);
- with the LLM (``--llm-requests``, default 50; the embedded server unless
  ``RECPILOT_LLM_BASE_URL`` is set): a second service with the LLM planner, fine stage
  off (one plan call per request), after its warm-up and after the requests.

Before LLM calls were recorded per run (``recpilot.llm.calls``), the client kept every
call with its prompt in one list for the life of the process. Run it under the shared
lock (it starts the embedded model)::

    flock /tmp/recpilot-heavy.lock python -m recpilot.evals.bench_memory

Only ``/proc`` is read (Linux).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from recpilot.config.settings import Settings


def rss_mib() -> float:
    """This process's resident set size in MiB (``VmRSS`` of ``/proc/self/status``).

    Raises:
        OSError: no ``/proc`` (not Linux).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise OSError("VmRSS not found in /proc/self/status")


def send(client: httpx.Client, users: list[str], n: int, rng: random.Random, body: dict) -> int:
    """Send ``n`` requests for random users; returns how many failed."""
    errors = 0
    for _ in range(n):
        r = client.post("/v1/recommend", json={"user_id": rng.choice(users), **body})
        errors += r.status_code != 200
    return errors


def measure(
    settings: Settings,
    use_llm: bool,
    checkpoints: list[int],
    warmup: int,
    body: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Run one service and read RSS after ``warmup`` and after each checkpoint.

    Returns:
        ``{"warmup": n, "baseline_mib", "points": [{"requests", "rss_mib", "seconds"}],
        "errors"}`` (requests counted after the warm-up).
    """
    from recpilot.data.catalogue import Catalogue
    from recpilot.service.background import serve_in_thread

    rng = random.Random(seed)
    key = settings.api_keys[0]
    out: dict[str, Any] = {"warmup": warmup, "points": [], "errors": 0}
    with serve_in_thread(settings, use_llm=use_llm) as url:
        users = sorted(Catalogue.load(settings.dataset_dir).interactions["user_id"].unique())
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
            out["errors"] += send(client, users, warmup, rng, body)
            gc.collect()
            out["baseline_mib"] = rss_mib()
            done, started = 0, time.perf_counter()
            for target in checkpoints:
                out["errors"] += send(client, users, target - done, rng, body)
                done = target
                gc.collect()
                out["points"].append(
                    {
                        "requests": done,
                        "rss_mib": rss_mib(),
                        "seconds": round(time.perf_counter() - started, 1),
                    }
                )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: see the module docstring. Prints a markdown table; returns the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", default="1000,5000", help="LLM-off request counts")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--llm-requests", type=int, default=50, help="0 skips the LLM run")
    parser.add_argument("--llm-warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", default=None, help="also write JSON here")
    args = parser.parse_args(argv)
    checkpoints = sorted(int(c) for c in args.checkpoints.split(",") if c.strip())
    key = secrets.token_urlsafe(12)
    base = Settings().model_copy(update={"api_keys": [key]})
    results: dict[str, Any] = {"dataset": base.dataset}
    results["llm_off"] = measure(
        base.model_copy(update={"planner": "rules"}),
        use_llm=False,
        checkpoints=checkpoints,
        warmup=args.warmup,
        body={"k": 10},
        seed=args.seed,
    )
    if args.llm_requests:
        results["llm"] = measure(
            base.model_copy(update={"planner": "llm"}),
            use_llm=True,
            checkpoints=[args.llm_requests],
            warmup=args.llm_warmup,
            body={"k": 10, "fine_mode": "off"},
            seed=args.seed,
        )
    print(f"dataset={base.dataset}; resident memory of the service process (MiB)")
    print("| run | requests after warm-up | RSS MiB | change from warm-up | seconds | errors |")
    print("|---|---|---|---|---|---|")
    for name in ("llm_off", "llm"):
        run = results.get(name)
        if not run:
            continue
        label = "LLM off (rules planner)" if name == "llm_off" else "LLM planner (1 call/request)"
        print(f"| {label} | 0 ({run['warmup']} warm-up) | {run['baseline_mib']} | | | |")
        for p in run["points"]:
            delta = round(p["rss_mib"] - run["baseline_mib"], 1)
            print(
                f"| {label} | {p['requests']} | {p['rss_mib']} | {delta:+} | {p['seconds']} "
                f"| {run['errors']} |"
            )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
