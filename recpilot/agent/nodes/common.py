"""Helpers shared by the controller's nodes: services lookup and stage records."""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

from langgraph.runtime import Runtime

from recpilot.agent.services import Services, default_services
from recpilot.agent.state import Code, StageRecord, State
from recpilot.data.meta import read_meta


@lru_cache(maxsize=8)
def _noun(dataset_dir: Path) -> str:
    try:
        return read_meta(dataset_dir).item_noun or "item"
    except (OSError, ValueError):
        return "item"


def item_noun(svc: Services) -> str:
    """What an item is called in the run's dataset ("movie"; "item" when unknown)."""
    return _noun(svc.settings.dataset_dir)


def services_of(runtime: Runtime[Services] | None) -> Services:
    """The run's services (runtime context), or the process default when none was given."""
    if runtime is not None and runtime.context is not None:
        return runtime.context
    return default_services()


def record(
    state: State,
    stage: str,
    started: float,
    n_out: int,
    fell_back: bool = False,
    note: str = "",
    codes: list[Code] | tuple[Code, ...] = (),
) -> list[StageRecord]:
    """The one stage record a node adds to ``stages`` (the state's reducer appends it).

    Args:
        state: the node's input (unused; kept so every call site reads the same).
        stage: the node's name.
        started: ``time.perf_counter()`` at the node's start (duration in ms).
        n_out: the node's output size (candidates, items, channels, …).
        fell_back: the node used its non-LLM fallback.
        note: one line for people.
        codes: structured reason codes (:class:`~recpilot.agent.state.Code`).
    """
    rec: StageRecord = {
        "stage": stage,
        "ms": round((time.perf_counter() - started) * 1000, 2),
        "n_out": n_out,
        "fell_back": fell_back,
        "codes": [str(c) for c in dict.fromkeys(codes)],
        "note": note,
    }
    return [rec]
