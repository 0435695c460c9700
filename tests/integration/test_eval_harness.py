"""The evaluation harness end to end on a slice of MovieLens 100K (generic ingest path).

One module-scoped home holds the slice (the first 60 users, ingested through
``recpilot.tools.ingest`` like any user's files) and its Chroma index. The first test runs
every non-LLM pipeline and protocol; the second runs both LLM fine modes on 2 users
against the session's embedded server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recpilot.agent.settings import Settings
from recpilot.evals.harness import EvalConfig, run_eval
from recpilot.evals.pipelines import reblend
from recpilot.evals.report import write_outputs
from recpilot.evals.split import leave_one_out
from recpilot.tools.catalogue import Catalogue
from recpilot.tools.ingest import ingest
from recpilot.tools.movielens import fetch_movielens_100k

pytestmark = pytest.mark.integration
SLICE_USERS = 60


@pytest.fixture(scope="module")
def slice_settings(ml100k_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("eval-home")
    full = Settings(home=home, dataset="movielens-100k", _env_file=None)
    fetch_movielens_100k(full.dataset_dir, ml100k_dir)
    items = pd.read_parquet(full.dataset_dir / "items.parquet")
    inter = pd.read_parquet(full.dataset_dir / "interactions.parquet")
    inter = inter[inter["user_id"].astype(int) <= SLICE_USERS]
    src = home / "src"
    src.mkdir()
    items["categories"] = ["|".join(c) for c in items["categories"]]
    items.to_csv(src / "items.csv", index=False)
    inter.to_csv(src / "interactions.csv", index=False)
    settings = Settings(home=home, dataset="ml100k-slice", _env_file=None)
    ingest(src / "items.csv", src / "interactions.csv", settings.dataset_dir, "ml100k-slice")
    return settings


def test_harness_without_llm(slice_settings: Settings, tmp_path: Path) -> None:
    config = EvalConfig(dataset="ml100k-slice", llm=False, cold_users=10, seed=3)
    results = run_eval(slice_settings, config)  # builds the item index on first use

    split = leave_one_out(Catalogue.load(slice_settings.dataset_dir).interactions)
    assert results["split"]["users"] == len(split.users) == SLICE_USERS
    assert results["split"]["universe_items"] == len(split.universe)
    full = results["results"]["full"]
    assert set(full) >= {"popularity", "recall:i2i", "recall+coarse[hybrid]"}
    for proto in ("full", "sampled-uniform", "sampled-popularity"):
        for name, m in results["results"][proto].items():
            assert m["users"] == SLICE_USERS, (proto, name)
            assert 0 <= m["NDCG@10"] <= m["HR@10"] <= m["HR@20"] <= 1
            assert m["HR@20"] <= m["candidate_HR"] + 1e-9, (proto, name)
    # The vectorised tuning scores and the graph agree on the same validation items.
    tuning, validation = results["tuning"], results["validation"]
    for model, key in (("als-tuned", "als_metrics"), ("hybrid", "hybrid_metrics")):
        metrics = tuning[key]
        graph = validation[f"recall+coarse[{model}]"]
        assert graph["NDCG@10"] == pytest.approx(metrics["NDCG@10"], abs=1e-4), model
        assert graph["HR@10"] == pytest.approx(metrics["HR@10"], abs=1e-4), model
    # Per-user rows agree with the aggregated metrics.
    rows = pd.DataFrame(results["_per_user"])
    pop = rows[(rows.protocol == "full") & (rows.pipeline == "popularity")]
    hr10 = (pop["rank"].fillna(99) <= 10).mean()
    assert hr10 == pytest.approx(full["popularity"]["HR@10"], abs=1e-5)
    targets = split.targets("test")
    assert all(targets[u] == t for u, t in zip(pop.user_id, pop.target, strict=True))
    cold = results["cold_start"]["by_history"]
    assert set(cold) == {"1", "3", "5", "full"}
    assert all(m["users"] == 10 for by in cold.values() for m in by.values())

    paths = write_outputs(results, tmp_path / "out")
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
    saved = json.loads(paths["json"].read_text())
    assert saved["dataset"]["interactions_sha256"] == results["dataset"]["interactions_sha256"]
    assert "Full ranking" in paths["markdown"].read_text()


def test_harness_llm_pipelines_on_two_users(slice_settings: Settings, embedded_llm: str) -> None:
    config = EvalConfig(
        dataset="ml100k-slice", users=2, tune=False, sampled=False, cold_users=0, seed=5,
        max_users=10,
    )  # fmt: skip
    results = run_eval(slice_settings, config, llm_base_url=embedded_llm)

    assert results["llm_sample"]["users"] == 2
    base = results["models"]["coarse_base_for_llm"]
    for mode in ("pointwise", "listwise"):
        name = f"recall+coarse[{base}]+fine:{mode}"
        cost = results["cost"][name]
        assert cost["users"] == 2
        assert cost["llm_calls_per_user"] >= 1
        assert cost["prompt_tokens_per_user"] > 0 and cost["completion_tokens_per_user"] > 0
        assert cost["fine_fell_back"] == 0
        assert results["results"]["full"][name]["users"] == 2
        assert name in results["llm_sample"]["paired_vs_base"]
        weights = results["models"]["fine_weight_used"][mode]
        rows = [r for r in results["_per_user"] if r["pipeline"] == name]
        assert len(rows) == 2 and all(r["llm_calls"] >= 1 for r in rows)
        sens = results["llm_sample"]["fine_weight_sensitivity_test"][name]
        assert set(sens) == {f"{w / 10:.1f}" for w in range(11)}
        # re-blending at the weight the graph used gives back the graph's own metric
        at_used = sens[f"{weights:.1f}"]["NDCG@10"]
        assert at_used == pytest.approx(results["llm_sample"]["full"][name]["NDCG@10"], abs=1e-5)
    assert reblend([], [], 0.5) == []
