"""The service load benchmark's client loop (counts and percentiles; no timing asserted)."""

import pytest

from recpilot.evals.bench_service import load, main, percentile
from recpilot.service.background import serve_in_thread as running_service


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 95) == 5


def test_load_counts_answers_and_errors(tiny_settings):
    settings = tiny_settings.model_copy(update={"api_keys": ["b"]})
    with running_service(settings, use_llm=False) as url:
        good = [{"user_id": u, "k": 3, "fine_mode": "off"} for u in ("u1", "u2", "u5", "u7")]
        out = load(url, "b", [*good, {"k": 0}], concurrency=2)
    assert out["requests"] == 5 and out["errors"] == 1 and "422" in out["error_examples"][0]
    assert out["llm_calls_mean"] == 0 and out["p50_ms"] <= out["p95_ms"]


def test_bad_mode_is_a_usage_error():
    with pytest.raises(SystemExit):
        main(["--mode", "sideways:3"])
