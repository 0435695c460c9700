"""Helpers shared by the controller's nodes: services lookup and stage records."""

from __future__ import annotations

import time

from langgraph.runtime import Runtime

from recpilot.agent.services import Services, default_services
from recpilot.agent.state import StageRecord, State


def services_of(runtime: Runtime[Services] | None) -> Services:
    """The run's services (runtime context), or the process default when none was given."""
    if runtime is not None and runtime.context is not None:
        return runtime.context
    return default_services()


def record(
    state: State, stage: str, started: float, n_out: int, fell_back: bool = False, note: str = ""
) -> list[StageRecord]:
    """``state['stages']`` plus one record for ``stage`` (duration from ``started``, ms)."""
    rec: StageRecord = {
        "stage": stage,
        "ms": round((time.perf_counter() - started) * 1000, 2),
        "n_out": n_out,
        "fell_back": fell_back,
        "note": note,
    }
    return [*state.get("stages", []), rec]
