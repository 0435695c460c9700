"""Evaluation runs in forked workers give exactly the serial numbers, and never hang on Chroma."""

from __future__ import annotations

import pytest

from recpilot.config.settings import Settings
from recpilot.data.item_index import ItemIndex
from recpilot.evals.exact_index import ExactIndex
from recpilot.evals.harness import EvalConfig, run_eval
from recpilot.evals.parallel import can_fork, map_in_workers

pytestmark = pytest.mark.skipif(not can_fork(), reason="needs the fork start method")


def _comparable(results: dict) -> dict:
    """Everything but clocks and per-run wall times."""
    rows = [{k: v for k, v in r.items() if k != "wall_ms"} for r in results["_per_user"]]
    return {
        "rows": rows,
        "results": results["results"],
        "validation": results["validation"],
        "cold": results["cold_start"],
        "tuning": results["tuning"],
    }


def test_two_workers_give_the_serial_numbers(tiny_settings: Settings) -> None:
    config = EvalConfig(dataset="tiny", negatives=8, min_user=3, min_item=1, llm=False,
                        cold_users=4, cold_histories=[1])  # fmt: skip
    serial = run_eval(tiny_settings, config.model_copy(update={"jobs": 1}))
    forked = run_eval(tiny_settings, config.model_copy(update={"jobs": 2}))
    assert serial["_per_user"]  # there is something to compare
    assert {r["protocol"] for r in serial["_per_user"]} == {
        "full", "sampled-uniform", "sampled-popularity",
    }  # fmt: skip
    assert _comparable(forked) == _comparable(serial)


def test_workers_answer_from_the_vectors_and_never_call_chroma(tiny_settings: Settings) -> None:
    catalogue_ids = [str(i) for i in range(1, 21)]
    index = ExactIndex(ItemIndex.open(tiny_settings), catalogue_ids)
    ids = ["1", "4", "7", "11"]
    expected = index.neighbours(ids, 3)

    def work(item_id: str) -> list[tuple[str, float]]:
        fresh = index.neighbours([item_id], 4)[0]  # not asked before the fork
        with pytest.raises(RuntimeError, match="detached"):
            index.metadata()  # would call Chroma: refused, not hung
        return fresh

    got = list(map_in_workers(work, ids, 2, setup=index.detach))
    assert [row[:3] for row in got] == expected
    assert all(row[0][0] == i for row, i in zip(got, ids, strict=True))  # itself first
    assert index.metadata()["dim"] == index.vectors(["1"]).shape[1]  # the parent still can


def test_a_worker_error_reaches_the_caller(tiny_settings: Settings) -> None:
    index = ExactIndex(ItemIndex.open(tiny_settings), ["1", "2"])

    def work(k: int) -> int:
        if k == 3:
            raise ValueError("task 3 failed")
        return k * k

    with pytest.raises(ValueError, match="task 3 failed"):
        list(map_in_workers(work, list(range(6)), 2, setup=index.detach))
    assert list(map_in_workers(lambda k: k + 1, [1, 2, 3], 2, setup=lambda: None)) == [2, 3, 4]
