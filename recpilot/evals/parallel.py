"""Evaluation runs spread over forked worker processes, results in serial order.

An evaluation without the LLM is CPU-bound Python, and one process uses one core.
:func:`map_in_workers` forks ``jobs`` workers *after* the caller has built everything
the runs need (catalogue, models, services), so each worker inherits it copy-on-write
and nothing is pickled but task numbers and results. Results come back in task order,
so a caller that adds them in that order gets exactly the numbers a serial loop gives
(tests/unit/test_eval_parallel.py).

Chroma's client does not survive a fork (its runtime's threads are not copied: a query
in the child hangs), so the evaluation passes ``setup`` =
:meth:`~recpilot.evals.exact_index.ExactIndex.detach`: in each worker its index answers
from the vectors it read before the fork, and anything that would still call Chroma
raises instead of hanging.

Linux (``fork``) only; elsewhere :func:`usable_jobs` is 1 and runs stay in-process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")

#: Seconds a worker may take for one task before the run is abandoned (a killed worker
#: would otherwise leave the pool waiting for ever).
TASK_TIMEOUT_S = 900.0

# What the workers inherit through the fork: set in the parent just before the pool
# starts, cleared after it ends. Module-level because a forked child sees the parent's
# module state, and only task numbers then need pickling.
_SHARED: dict[str, Any] = {}


def can_fork() -> bool:
    """True where the ``fork`` start method exists (Linux, macOS)."""
    return "fork" in mp.get_all_start_methods()


def usable_jobs() -> int:
    """Worker processes a run can use: the cores this process may run on (1 without fork)."""
    if not can_fork():
        return 1
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _start_worker() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool (its workers get
    # SIGTERM); a worker that also raised KeyboardInterrupt would print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _SHARED["setup"]()
    # One BLAS thread per worker: with OpenBLAS's default (a thread per core) two workers
    # on 2 cores ran the test phase of the 2.8k-item benchmark no faster than one process
    # (300 users: 25.9 s vs 31.9 s; 16.9 s with this limit).
    threadpool_limits(1, user_api="blas")


def _run_task(k: int) -> Any:
    return _SHARED["work"](_SHARED["tasks"][k])


def map_in_workers(
    work: Callable[[T], R], tasks: Sequence[T], jobs: int, setup: Callable[[], None]
) -> Iterator[R]:
    """``work(task)`` for each task, computed in ``jobs`` forked workers, yielded in order.

    Args:
        work: called in a worker; may use anything built before the call (inherited by
            the fork) but not Chroma. Its return value is pickled back.
        tasks: the tasks (stay in memory; only their positions are sent).
        jobs: worker processes (>= 2; use a plain loop for 1).
        setup: called once in each worker before its first task (e.g. ``index.detach``).

    Yields:
        ``work(tasks[0])``, ``work(tasks[1])``, ... as each becomes available, in order.

    Raises:
        ValueError: ``jobs`` < 2, or no ``fork`` on this platform.
        RuntimeError: already running in this process.
        TimeoutError: no result for :data:`TASK_TIMEOUT_S` seconds (a worker died).
        Exception: whatever ``work`` raised in a worker.
    """
    if jobs < 2 or not can_fork():
        raise ValueError(f"map_in_workers needs jobs >= 2 and fork (jobs={jobs})")
    if _SHARED:
        raise RuntimeError("map_in_workers is already running in this process")
    _SHARED.update(work=work, tasks=tasks, setup=setup)
    try:
        with mp.get_context("fork").Pool(jobs, initializer=_start_worker) as pool:
            results = pool.imap(_run_task, range(len(tasks)))
            for _ in range(len(tasks)):
                try:
                    yield results.next(timeout=TASK_TIMEOUT_S)
                except mp.TimeoutError:
                    raise TimeoutError(
                        f"an evaluation worker gave no result for {TASK_TIMEOUT_S:.0f} s "
                        "(killed? out of memory?); run again with --jobs 1"
                    ) from None
    finally:
        _SHARED.clear()
