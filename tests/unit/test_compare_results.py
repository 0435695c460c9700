"""recpilot.evals.compare_results: every value but the timings is compared."""

from __future__ import annotations

import json
from pathlib import Path

from recpilot.evals.compare_results import compare, main


def test_timings_are_skipped_and_metric_changes_found(tmp_path: Path) -> None:
    before = {"results": {"full": {"pop": {"NDCG@10": 0.1, "HR@10": 0.2}}},
              "timing_s": {"total_s": 10.0}, "cost": {"pop": {"wall_ms": {"p50": 3.0}}},
              "_per_user": [{"rank": 3, "wall_ms": 1.0}]}  # fmt: skip
    after = json.loads(json.dumps(before))
    after["timing_s"]["total_s"] = 5.0
    after["cost"]["pop"]["wall_ms"]["p50"] = 1.0
    after["_per_user"][0]["wall_ms"] = 0.5
    n, diffs = compare(before, after)
    assert (n, diffs) == (3, [])
    after["_per_user"][0]["rank"] = 4
    after["results"]["full"]["pop"]["MRR"] = 0.3
    n, diffs = compare(before, after)
    assert diffs == ["_per_user.0.rank: 3 → 4", "results.full.pop.MRR: '<missing>' → 0.3"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(before))
    b.write_text(json.dumps(after))
    assert main([str(a), str(a)]) == 0 and main([str(a), str(b)]) == 1
    assert main([str(a)]) == 2 and main([str(a), str(tmp_path / "none.json")]) == 2
