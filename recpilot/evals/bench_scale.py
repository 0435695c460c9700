"""Load benchmark of the service on real engines: LLM-off latency under LLM turns, workers, memory.

One command (loopback only, bounded in requests and seconds)::

    flock /tmp/recpilot-llm.lock python -m recpilot.evals.bench_scale \\
        --workers 1 --workers 2 --requests 2000 --memory-requests 10000 --out scale.json

For each ``--workers`` count it starts ``recpilot serve --workers N`` (a subprocess on
127.0.0.1; the data directory, dataset, ``RECPILOT_DATABASE_URL`` and
``RECPILOT_CHROMA_HOST`` come from the environment — more than one worker needs both)
and measures:

1. **throughput** (closed loop): ``--requests`` LLM-off recommends (``planner=rules``,
   ``fine_mode=off``, random warm users) from ``--clients`` (16) client threads, each
   sending its next request when its last is answered: requests/s, p50/p95 (ms), the
   machine's busy CPU share and the cores the server used (:func:`cpu_share`). This
   saturates the server, so its latency is mostly the clients' own queue (16 / req/s);
2. **latency** (open loop, :func:`paced_load`): ``--rate`` LLM-off requests/s (16: sixteen
   clients at one request a second) for ``--paced-seconds``: p50/p95/max (ms);
3. **under LLM turns**: phases 1 and 2 again (2 for twice as long) while one client runs
   chat turns with the LLM back to back (a message + listwise fine ranking): p50/p95 of
   the LLM-off requests that ran inside an LLM turn, the turns' latency and their LLM
   queue wait (the limiter's, summed over a turn's calls, from the stored traces);

then, with the first worker count, ``--memory-requests`` LLM-off requests while the
resident memory (RSS) of the server's process tree is sampled every 1,000 requests.

The LLM is one server for all workers: ``RECPILOT_LLM_BASE_URL`` if set, else the embedded
model started here once (hold the LLM lock). Latencies are client-side (request sent →
response parsed) on the same machine as the server: the clients' own CPU counts against
it. Report the load average with the numbers (``uptime``): the cores may be shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from recpilot.config.settings import Settings
from recpilot.llm.server import free_port


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100, linear interpolation); 0.0 for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else 0.0


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, MiB (Linux ``/proc``)."""
    total_kb = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
    return total_kb / 1024


def machine_cpu() -> tuple[float, float]:
    """``(busy, total)`` CPU jiffies of the whole machine since boot (Linux ``/proc/stat``,
    first line; busy = total − idle − iowait)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - fields[3] - fields[4], total


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{p}/stat").read_text()
            after = stat[stat.rindex(")") + 2 :].split()
            total += (int(after[11]) + int(after[12])) / ticks  # utime, stime
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return total


@contextlib.contextmanager
def cpu_share(pid: int) -> Iterator[dict[str, float]]:
    """Measure the ``with`` block: fills ``{"machine_busy", "server_cores"}`` — the
    machine's busy share of all its cores (0–1) and the cores the server tree used on
    average — so a result shows whether the machine, not the service, was the limit."""
    out: dict[str, float] = {}
    busy0, total0 = machine_cpu()
    cpu0, t0 = tree_cpu_s(pid), time.perf_counter()
    yield out
    busy1, total1 = machine_cpu()
    seconds = time.perf_counter() - t0
    out["machine_busy"] = round((busy1 - busy0) / max(total1 - total0, 1.0), 3)
    out["server_cores"] = round((tree_cpu_s(pid) - cpu0) / max(seconds, 1e-9), 2)


@contextlib.contextmanager
def serve(
    workers: int, env: dict[str, str], start_timeout_s: float = 300, use_llm: bool = True
) -> Iterator[tuple[str, int]]:
    """``recpilot serve --workers N`` on a free port; yields ``(base URL, pid)``.

    Raises:
        RuntimeError: the service did not become ready (its output is in the message).
    """
    import tempfile

    port = free_port()
    log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "recpilot.cli", "serve", "--workers", str(workers),
         "--host", "127.0.0.1", "--port", str(port), *([] if use_llm else ["--no-llm"])],
        env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                said = log.read().decode(errors="replace")
                raise RuntimeError(f"serve exited: {said[-800:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not become ready in time")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def llm_off_load(
    url: str, key: str, users: list[str], n: int, clients: int, k: int,
    max_seconds: float = 900, every: int = 0, on_every: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Send ``n`` LLM-off recommends from ``clients`` threads (stopping after
    ``max_seconds``); latencies with timestamps.

    Returns:
        ``{"requests", "errors", "seconds", "rps", "p50_ms", "p95_ms", "samples"}`` where
        ``samples`` is a list of ``(start_s, end_s, ms)`` (perf_counter seconds).
    """
    counter = iter(range(n))
    lock = threading.Lock()
    samples: list[tuple[float, float, float]] = []
    errors = [0]
    done = [0]

    deadline = time.perf_counter() + max_seconds

    def client() -> None:
        rng = random.Random()
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as c:
            while time.perf_counter() < deadline:
                with lock:
                    if next(counter, None) is None:
                        return
                body = {"user_id": rng.choice(users), "k": k, "fine_mode": "off"}
                t0 = time.perf_counter()
                try:
                    ok = c.post("/v1/recommend", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                t1 = time.perf_counter()
                with lock:
                    done[0] += 1
                    if ok:
                        samples.append((t0, t1, (t1 - t0) * 1000))
                    else:
                        errors[0] += 1
                    if every and on_every and done[0] % every == 0:
                        on_every(done[0])

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    ms = [s[2] for s in samples]
    return {
        "requests": len(samples) + errors[0],
        "errors": errors[0],
        "seconds": round(seconds, 2),
        "rps": round(len(samples) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "samples": samples,
    }


def paced_load(
    url: str, key: str, users: list[str], rate: float, seconds: float, k: int, seed: int = 0
) -> dict[str, Any]:
    """Open-loop LLM-off recommends: ``rate`` requests/s for ``seconds``, each sent on its
    schedule whatever the earlier ones are doing (a closed loop of N clients measures its
    own queue: its latency is N / throughput once the server is saturated).

    Arrivals are evenly spaced (``1 / rate`` s apart) and sent from a pool of 64 threads
    sharing one keep-alive ``httpx.Client``;
    a latency runs from the **scheduled** send time to the parsed response, so a request
    that waited for a free client thread counts its wait (no coordinated omission).

    Returns:
        ``{"rate", "requests", "errors", "p50_ms", "p95_ms", "max_ms", "samples"}`` with
        ``samples`` a list of ``(scheduled_s, end_s, ms)`` (perf_counter seconds).
    """
    from concurrent.futures import ThreadPoolExecutor

    rng = random.Random(seed)
    lock = threading.Lock()
    samples: list[tuple[float, float, float]] = []
    errors = [0]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    client = httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60, limits=limits)

    def one(at: float, user: str) -> None:
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            body = {"user_id": user, "k": k, "fine_mode": "off"}
            ok = client.post("/v1/recommend", json=body).status_code == 200
        except httpx.HTTPError:
            ok = False
        end = time.perf_counter()
        with lock:
            if ok:
                samples.append((at, end, (end - at) * 1000))
            else:
                errors[0] += 1

    start = time.perf_counter() + 0.5
    n = int(rate * seconds)
    with client, ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(n):
            at = start + i / rate
            time.sleep(max(0.0, at - 0.05 - time.perf_counter()))
            pool.submit(one, at, rng.choice(users))
    ms = [s[2] for s in samples]
    return {
        "rate": rate,
        "requests": len(samples) + errors[0],
        "errors": errors[0],
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms, default=0.0), 1),
        "samples": samples,
    }


def chat_turns(url: str, key: str, users: list[str], stop: threading.Event) -> list[dict]:
    """LLM turns back to back until ``stop``: each ``{"start", "end", "ms", "queue_wait_ms",
    "llm_calls", "status"}`` (queue wait from the stored trace's LLM calls)."""
    prompts = ["something funny for tonight", "a tense thriller", "space adventure films",
               "a romantic comedy", "more like that"]  # fmt: skip
    turns: list[dict] = []
    rng = random.Random(7)
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=300) as c:
        while not stop.is_set():
            body = {"user_id": rng.choice(users), "message": rng.choice(prompts), "k": 5,
                    "fine_mode": "listwise"}  # fmt: skip
            t0 = time.perf_counter()
            r = c.post("/v1/recommend", json=body)
            t1 = time.perf_counter()
            turn = {"start": t0, "end": t1, "ms": (t1 - t0) * 1000, "status": r.status_code,
                    "queue_wait_ms": 0.0, "llm_calls": 0}  # fmt: skip
            if r.status_code == 200:
                out = r.json()
                turn["llm_calls"] = out["llm"]["calls"]
                if out.get("run_id"):
                    trace = c.get(f"/v1/traces/{out['run_id']}").json()
                    turn["queue_wait_ms"] = sum(
                        call.get("extra", {}).get("queue_wait_ms", 0.0)
                        for node in trace.get("nodes", []) for call in node.get("llm_calls", [])
                    )
            else:
                time.sleep(1)
            turns.append(turn)
    return turns


def overlapping(samples: list[tuple[float, float, float]], turns: list[dict]) -> list[float]:
    """Latencies (ms) of the samples that ran entirely inside some LLM turn."""
    spans = [(t["start"], t["end"]) for t in turns if t["llm_calls"]]
    return [ms for s, e, ms in samples if any(a <= s and e <= b for a, b in spans)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; prints and returns the report (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, action="append", help="Worker counts (repeat).")
    ap.add_argument("--requests", type=int, default=2000, help="LLM-off requests per phase.")
    ap.add_argument("--memory-requests", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--max-seconds", type=float, default=900, help="Cap per phase.")
    ap.add_argument("--rate", type=float, default=16.0,
                    help="Paced phase: LLM-off requests/s, open loop (16 clients x 1/s).")
    ap.add_argument("--paced-seconds", type=float, default=60.0, help="Paced phase length.")
    ap.add_argument("--no-llm-turns", action="store_true", help="Skip the LLM phase.")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    workers = args.workers or [1, 2]
    settings = Settings()
    from recpilot.data.catalogue import Catalogue

    catalogue = Catalogue.load(settings.dataset_dir)
    users = [str(u) for u in catalogue.interactions["user_id"].unique()[:500]]
    key = secrets.token_urlsafe(12)
    env = dict(os.environ)
    env.update(RECPILOT_API_KEYS=json.dumps([key]), RECPILOT_PLANNER="rules",
               RECPILOT_LLM_MAX_WAITING=str(max(settings.llm_max_waiting, 2)))  # fmt: skip
    load1 = os.getloadavg()
    report: dict[str, Any] = {
        "dataset": settings.dataset,
        "database": "postgresql" if settings.database_url else "sqlite",
        "chroma": "server" if settings.chroma_host else "local",
        "clients": args.clients,
        "cpu_count": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in load1],
        "runs": [],
    }
    with contextlib.ExitStack() as stack:
        if not args.no_llm_turns and not settings.llm_base_url:
            from recpilot.llm.server import (
                embedded_client_settings,
                for_serving,
                resolve_llm,
                settings_env,
            )

            # at the priority `recpilot serve` gives it
            url = stack.enter_context(resolve_llm(for_serving(settings)))
            env.update(settings_env(embedded_client_settings(url)))
        for n in workers:
            run: dict[str, Any] = {"workers": n}
            with serve(n, env, use_llm=not args.no_llm_turns) as (url, pid):
                llm_off_load(url, key, users, 200, args.clients, args.k)  # warm-up
                with cpu_share(pid) as cpu:
                    plain = llm_off_load(url, key, users, args.requests, args.clients, args.k,
                                         args.max_seconds)
                plain.pop("samples")
                run["llm_off_only"] = {**plain, **cpu}
                paced = paced_load(url, key, users, args.rate, args.paced_seconds, args.k)
                paced.pop("samples")
                run["paced_llm_off_only"] = paced
                if not args.no_llm_turns:
                    stop = threading.Event()
                    turns: list[dict] = []
                    t = threading.Thread(target=lambda: turns.extend(  # noqa: B023
                        chat_turns(url, key, users, stop)))  # noqa: B023
                    t.start()
                    time.sleep(2)  # the first turn is in flight
                    mixed = llm_off_load(url, key, users, args.requests, args.clients, args.k,
                                         args.max_seconds)
                    paced_mixed = paced_load(url, key, users, args.rate, args.paced_seconds * 2,
                                             args.k, seed=1)
                    stop.set()
                    t.join(timeout=300)
                    inside = overlapping(mixed.pop("samples"), turns)
                    paced_inside = overlapping(paced_mixed.pop("samples"), turns)
                    run["paced_during_llm_turns"] = {
                        **paced_mixed,
                        "overlapping_requests": len(paced_inside),
                        "overlapping_p50_ms": round(percentile(paced_inside, 50), 1),
                        "overlapping_p95_ms": round(percentile(paced_inside, 95), 1),
                    }
                    ok = [x for x in turns if x["status"] == 200]
                    run["llm_off_during_llm_turns"] = {
                        **mixed,
                        "overlapping_requests": len(inside),
                        "overlapping_p50_ms": round(percentile(inside, 50), 1),
                        "overlapping_p95_ms": round(percentile(inside, 95), 1),
                    }
                    run["llm_turns"] = {
                        "turns": len(turns),
                        "ok": len(ok),
                        "status": sorted({x["status"] for x in turns}),
                        "p50_ms": round(percentile([x["ms"] for x in ok], 50), 1),
                        "queue_wait_p50_ms": round(
                            percentile([x["queue_wait_ms"] for x in ok], 50), 1),
                        "queue_wait_max_ms": round(max((x["queue_wait_ms"] for x in ok),
                                                       default=0.0), 1),
                    }  # fmt: skip
                if n == workers[0] and args.memory_requests:
                    rss = [(0, round(tree_rss_mb(pid), 1))]

                    def sample(done: int, pid: int = pid, rss: list = rss) -> None:
                        rss.append((done, round(tree_rss_mb(pid), 1)))

                    mem = llm_off_load(
                        url, key, users, args.memory_requests, args.clients, args.k,
                        args.max_seconds, every=1000, on_every=sample,
                    )  # fmt: skip
                    mem.pop("samples")
                    run["memory"] = {**mem, "rss_mb_by_requests": rss,
                                     "rss_growth_mb": round(rss[-1][1] - rss[1][1], 1)
                                     if len(rss) > 2 else None}  # fmt: skip
            report["runs"].append(run)
            print(json.dumps(run), flush=True)
    rps = {r["workers"]: r["llm_off_only"]["rps"] for r in report["runs"]}
    if 1 in rps and 2 in rps and rps[1]:
        report["speedup_2_workers"] = round(rps[2] / rps[1], 2)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)
    return report


if __name__ == "__main__":
    main()
