"""Offline evaluation harness: ``recpilot eval``.

Steps (each measured, all seeded):

1. Leave-one-out split by timestamp (:mod:`recpilot.evals.split`).
2. Validation phase (models trained without validation and test items): tune ALS and
   the hybrid prototype on the validation items (:mod:`recpilot.evals.tuning`), then
   re-measure the coarse models through the graph on the same items; the best becomes
   the base of the LLM pipelines. Optionally (``tune_fine_users``) run the LLM on some
   validation users and pick ``fine_weight`` by re-blending their recorded scores.
3. Test phase (trained on train + validation): every pipeline
   (:mod:`recpilot.evals.pipelines`) on the full-ranking protocol and on the two
   sampled protocols; non-LLM pipelines on every user, LLM pipelines on a seeded sample.
4. Cold-start slice: a seeded set of users whose training history is cut to their first
   1, 3, 5 interactions (models retrained each time), full ranking.
5. Aggregate (:mod:`recpilot.evals.metrics`) and write JSON, per-user CSV, markdown and
   PNG plots (:mod:`recpilot.evals.report`).

The graph, the tools and the Chroma index are the product's own; what the harness
builds per phase is the ``Services`` runtime context: a :class:`Catalogue` over the
phase's training interactions, the coarse models trained on them, and the one item
index of the dataset (item texts do not depend on the split).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from recpilot.agent.direct import DirectFunnel
from recpilot.agent.services import Services, build_services, open_llm
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.data.embeddings import make_encoder
from recpilot.data.ingest import read_meta
from recpilot.data.item_index import ItemIndex
from recpilot.data.meta import LikedRule
from recpilot.evals.exact_index import ExactIndex
from recpilot.evals.metrics import (
    Rank,
    bootstrap_ci,
    candidate_hit_rate,
    per_user_ndcg,
    rank_of,
    summarize,
)
from recpilot.evals.parallel import can_fork, map_in_workers, usable_jobs
from recpilot.evals.pipelines import Pipeline, RunRecord, reblend, run_graph, with_budgets
from recpilot.evals.split import (
    SAMPLERS,
    LOOSplit,
    leave_one_out,
    sample_negatives,
    sample_users,
    truncate_histories,
)
from recpilot.evals.tuning import AlsParams, TuningResult, ablation, train_als, tune
from recpilot.funnel import recall as recall_channels
from recpilot.funnel.scorers.als import CollaborativeModel
from recpilot.funnel.scorers.hybrid import HybridModel, HybridParams
from recpilot.llm.client import LLMClient

# Published reference: LlamaRec (Yue et al., 2023, arXiv:2311.02089), Table 2, "ML-100k".
# Its code (github.com/Yueeeeeeee/LlamaRec, datasets/ml_100k.py) downloads
# ml-latest-small.zip for that name, 5-core filtered (610 users, 3,650 items), LOO by
# (timestamp, item id), full ranking excluding history.
REFERENCE = {
    "source": "LlamaRec, Yue et al. 2023 (arXiv:2311.02089), Table 2 'ML-100k'",
    "dataset_note": (
        "LlamaRec's 'ml-100k' loader downloads ml-latest-small.zip (610 users, 3,650 items "
        "after its 5-core filter), not the original MovieLens 100K"
    ),
    "LlamaRec": {"NDCG@10": 0.0759, "HR@10": 0.1524},
    "LRURec": {"NDCG@10": 0.0705, "HR@10": 0.1426},
}
FINE_WEIGHTS = [round(w, 2) for w in np.linspace(0.0, 1.0, 11)]
Protocol = Literal["full", "sampled-uniform", "sampled-popularity"]
UserRun = tuple[Protocol, RunRecord, list[str]]  # one run: protocol, record, ranked ids


# kept out of outputs
SECRET_SETTINGS = {"llm_api_key", "embedding_api_key", "api_keys", "user_api_keys"}


class EvalConfig(BaseModel):
    """What ``recpilot eval`` runs (every field is written to the results JSON)."""

    dataset: str
    seed: int = Field(default=0, description="Seed of every sample (users, negatives, ALS).")
    users: int = Field(default=50, ge=0, description="Users for the LLM pipelines.")
    max_users: int | None = Field(
        default=None, ge=1, description="Cap on users for non-LLM pipelines (None: all)."
    )
    ks: list[int] = Field(default_factory=lambda: [5, 10, 20])
    negatives: int = Field(default=100, ge=1, description="Negatives per sampled list.")
    min_user: int = Field(default=5, ge=3, description="k-core: interactions per user.")
    min_item: int = Field(default=5, ge=1, description="k-core: interactions per item.")
    split: Literal["auto", "time", "random"] = Field(
        default="auto",
        description="Hold-out order: auto (time if timestamps are real, else seeded random), "
        "time, random (see recpilot.evals.split).",
    )
    sampled: bool = Field(default=True, description="Also run the sampled protocols.")
    llm_sampled_users: int = Field(
        default=10, ge=0, description="Of the LLM users, how many also run the sampled protocols."
    )
    llm: bool = Field(default=True, description="Run the LLM pipelines.")
    fine_modes: list[Literal["pointwise", "listwise"]] = Field(
        default_factory=lambda: ["pointwise", "listwise"]
    )
    tune: bool = Field(default=True, description="Grid-search the coarse models on validation.")
    tune_fine_users: int = Field(
        default=0, ge=0, description="Validation users for tuning fine_weight (0: no tuning)."
    )
    cold_histories: list[int] = Field(default_factory=lambda: [1, 3, 5])
    cold_users: int = Field(default=100, ge=0, description="Users in the cold-start slice.")
    cold_llm_users: int = Field(default=0, ge=0, description="Of those, run the LLM on.")
    out_dir: Path | None = None
    resume: bool = Field(
        default=False, description="Reuse LLM runs saved in out_dir/llm_runs.jsonl."
    )
    jobs: int | None = Field(
        default=None,
        ge=1,
        description="Worker processes for the non-LLM runs (None: one per usable core); "
        "the numbers do not depend on it.",
    )


@dataclass
class PipelineRuns:
    """Per-user outcomes of one pipeline on one (phase/slice, protocol)."""

    users: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    ranks: list[Rank] = field(default_factory=list)
    lists: list[list[str]] = field(default_factory=list)
    candidates: list[list[str]] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)

    def add(self, user: str, target: str, rec: RunRecord, ranked: list[str]) -> None:
        """Store one user's run; ``ranked`` is the list the metrics read."""
        self.users.append(user)
        self.targets.append(target)
        self.ranks.append(rank_of(ranked, target))
        self.lists.append(ranked)
        self.candidates.append(rec.candidates)
        self.records.append(rec)

    def subset(self, users: set[str]) -> PipelineRuns:
        """The runs of ``users`` only."""
        out = PipelineRuns()
        for k, u in enumerate(self.users):
            if u in users:
                out.add(u, self.targets[k], self.records[k], self.lists[k])
        return out


Runs = dict[str, dict[str, PipelineRuns]]  # protocol → pipeline name → runs


class RunCache:
    """LLM runs saved as they finish (``llm_runs.jsonl``), so a killed run can resume.

    Each line is one user's run of one LLM pipeline: ``{"key": [stage, protocol,
    pipeline, user], "fingerprint", "target", "ranked", "record"}``. Lines whose
    ``fingerprint`` (the config and settings that shape results) differs from the current
    one are ignored, so a resumed run never mixes configurations.

    Args:
        path: the JSONL file (created on first write).
        fingerprint: a string identifying the configuration.
        resume: read existing lines (else the file must not hold runs yet).

    Raises:
        ValueError: not ``resume`` and ``path`` already holds runs (never deleted unasked).
    """

    def __init__(self, path: Path, fingerprint: str, resume: bool) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.entries: dict[tuple[str, ...], dict[str, Any]] = {}
        if resume and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by the kill
                if row.get("fingerprint") == fingerprint:
                    self.entries[tuple(row["key"])] = row
        elif path.is_file() and path.stat().st_size:
            raise ValueError(
                f"{path.parent} holds saved LLM runs ({path.name}); pass --resume to reuse "
                "them, or choose another --out"
            )

    def get(self, key: tuple[str, ...]) -> tuple[str, RunRecord, list[str]] | None:
        """``(target, record, ranked)`` saved under ``key``, or None."""
        row = self.entries.get(key)
        if row is None:
            return None
        return row["target"], RunRecord(**row["record"]), row["ranked"]

    def put(self, key: tuple[str, ...], target: str, rec: RunRecord, ranked: list[str]) -> None:
        """Append one run (flushed at once)."""
        row = {
            "key": list(key),
            "fingerprint": self.fingerprint,
            "target": target,
            "ranked": ranked,
            "record": dataclasses.asdict(rec),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=str) + "\n")
        self.entries[key] = row


@dataclass
class Progress:
    """Progress callbacks (a rich bar in the CLI, nothing in tests)."""

    start: Callable[[str, int], Any] = lambda label, total: None
    advance: Callable[[Any], None] = lambda task: None
    done: Callable[[Any], None] = lambda task: None
    update: Callable[[Any, int, int], None] = lambda task, done, total: None


@dataclass
class World:
    """What every phase shares: the split, items, index, encoder, item vectors."""

    settings: Settings
    split: LOOSplit
    items: pd.DataFrame
    index: ExactIndex  # the run's index: exact, and safe to detach in workers
    encoder: Any
    vectors: np.ndarray
    ids: list[str]
    hidden_full: list[str]
    liked: LikedRule

    def catalogue(self, train: pd.DataFrame) -> Catalogue:
        """A catalogue of every item with ``train`` as its interactions (the dataset's
        "liked" rule, not one derived from the split)."""
        return Catalogue(self.items, train, self.liked)

    def services(
        self, catalogue: Catalogue, model: CollaborativeModel, llm: LLMClient | None
    ) -> Services:
        """The graph's runtime context for one phase and coarse model."""
        return build_services(
            self.settings,
            llm,
            catalogue=catalogue,
            index=self.index,
            encoder=self.encoder,
            item_vectors=self.vectors,
            coarse_model=model,
            recall_model=model,  # one model in both slots: the "recall + coarse[model]" rows
        )


def channel_pipelines() -> list[Pipeline]:
    """One "channel alone" pipeline per registered recall channel that can be evaluated
    without request text: the backstop (popularity, the baseline) first, then plan order."""
    alone = [c for c in recall_channels.channels() if c.evaluate_alone]
    alone.sort(key=lambda c: not c.backstop)
    return [
        Pipeline(
            name=c.eval_name or f"recall:{c.name}",
            model="als-default",
            channels=[c.name],
            cut="recall",
        )
        for c in alone
    ]


def default_pipelines(base: str, fine_modes: list[str], llm: bool) -> list[Pipeline]:
    """The compared pipelines; the LLM ones re-rank the short list of model ``base``."""
    out = channel_pipelines()
    out += [
        Pipeline(name="recall+coarse[als-default]", model="als-default"),
        Pipeline(name="recall+coarse[als-tuned]", model="als-tuned"),
        Pipeline(name="recall+coarse[hybrid]", model="hybrid"),
    ]
    if llm:
        out += [
            Pipeline(name=f"recall+coarse[{base}]+fine:{m}", model=base, fine_mode=m)  # type: ignore[arg-type]
            for m in fine_modes
        ]
    return out


def build_models(
    train: pd.DataFrame, catalogue: Catalogue, settings: Settings, tuned: TuningResult | None,
    seed: int,
) -> dict[str, CollaborativeModel]:  # fmt: skip
    """The three coarse models trained on ``train``: shipped ALS, tuned ALS, hybrid."""
    n = len(catalogue)
    shipped = AlsParams(
        factors=settings.als_factors,
        iterations=settings.als_iterations,
        regularization=settings.als_regularization,
        alpha=settings.als_alpha,
    )
    als_default = train_als(train, catalogue.index_of, n, shipped, seed)
    best = tuned.als if tuned else shipped
    als_tuned = (
        als_default if best == shipped else train_als(train, catalogue.index_of, n, best, seed)
    )
    params = tuned.hybrid if tuned else HybridParams()
    hybrid = HybridModel(als_tuned, train, catalogue.index_of, params)
    return {"als-default": als_default, "als-tuned": als_tuned, "hybrid": hybrid}


def git_info() -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the repository holding this file (read-only git calls)."""
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def load_world(settings: Settings, config: EvalConfig, progress: Progress) -> World:
    """Load the dataset, split it, and open (or build, once) the item index."""
    catalogue = Catalogue.load(settings.dataset_dir)
    split = leave_one_out(
        catalogue.interactions, config.min_user, config.min_item, config.split, config.seed
    )
    index = ItemIndex.open(settings)
    encoder = make_encoder(settings)
    ids = [str(i) for i in catalogue.ids]
    if not index.is_built():
        task = progress.start("building the item index (once per dataset)", len(ids))
        index.build(
            ids,
            [catalogue.item_text(p) for p in range(len(ids))],
            encoder,
            progress=lambda done, total: progress.advance(task),
        )
        progress.done(task)
    universe = set(split.universe)
    index = ExactIndex(index, ids)  # every vector read once; exact, same in every process
    return World(
        settings=settings,
        split=split,
        items=catalogue.items,
        index=index,
        encoder=encoder,
        vectors=index.vectors(ids),
        ids=ids,
        hidden_full=[i for i in ids if i not in universe],
        liked=catalogue.liked,
    )


class Runner:
    """Runs pipelines for users on one phase or slice (one set of services)."""

    def __init__(
        self,
        world: World,
        services: dict[str, Services],
        config: EvalConfig,
        popularity: dict[str, float],
    ) -> None:
        self.world = world
        self.services = services
        self.config = config
        self.popularity = popularity
        self.graph = DirectFunnel()  # message-less one-off runs: no Pregel loop
        self.k = max(config.ks)
        self._pools: dict[tuple[str, str], tuple[int, list[str]]] = {}

    def _svc(self, p: Pipeline) -> Services:
        return self.services[llm_key(p.model, p.fine_mode) if p.uses_llm else p.model]

    def _pool(self, user: str, target: str, method: str) -> tuple[int, list[str]]:
        """Size of the sampled list and the items to hide, cached per (user, method)."""
        key = (user, method)
        if key not in self._pools:
            negatives = sample_negatives(
                self.world.split.universe,
                self.world.split.user_items(user),
                self.config.negatives,
                method,  # type: ignore[arg-type]
                self.config.seed,
                user,
                self.popularity,
            )
            pool = {target, *negatives}
            self._pools[key] = (len(pool), [i for i in self.world.ids if i not in pool])
        return self._pools[key]

    def full(self, p: Pipeline, user: str, target: str) -> tuple[RunRecord, list[str]]:
        """Full ranking: the pipeline's top-k over every unseen item of the universe.

        Returns:
            ``(record, ranked)``: the run and the list the metrics read.
        """
        svc = self._svc(p)
        svc = with_budgets(svc, coarse_keep=max(svc.settings.coarse_keep, self.k))
        rec = run_graph(self.graph, svc, user, p, self.k, self.world.hidden_full)
        ranked = rec.ranked[: self.k] if p.cut == "recall" else rec.ranked
        return rec, ranked

    def sampled(
        self, p: Pipeline, user: str, target: str, method: str
    ) -> tuple[RunRecord, list[str]]:
        """Sampled ranking: the held-out item among ``negatives`` sampled items.

        Returns:
            ``(record, ranked)``: the run and the whole pool's order, which the metrics read.
        """
        n, hidden = self._pool(user, target, method)
        base = with_budgets(
            self.services[p.model],
            recall_per_channel=max(n, self.world.settings.recall_per_channel),
            coarse_keep=n,
        )
        plain = p.model_copy(update={"fine_mode": "off"})
        # The order of all n items is the final candidate list (coarse keeps n), which is
        # what respond's top n would be; respond itself only builds the top k reply items.
        rec = run_graph(self.graph, base, user, plain, min(self.k, n), hidden)
        ranked = rec.ranked if p.cut == "recall" else [c["item_id"] for c in rec.short]
        if p.uses_llm:
            svc = with_budgets(
                self._svc(p),
                recall_per_channel=max(n, self.world.settings.recall_per_channel),
            )
            keep = svc.settings.coarse_keep
            rec = run_graph(self.graph, svc, user, p, keep, hidden)
            head = rec.ranked
            ranked = head + [i for i in ranked if i not in set(head)]
        return rec, ranked

    def user_runs(
        self, p: Pipeline, user: str, target: str, protocols: list[Protocol]
    ) -> list[UserRun]:
        """One user's runs of ``p`` on each protocol: ``[(protocol, record, ranked), ...]``.

        A non-LLM run's record drops the final candidate dicts (``short``, ``coarse_order``:
        only the LLM pipelines' re-blending reads them), which keeps a run small to hold
        and to send back from a worker process.
        """
        out: list[UserRun] = []
        for proto in protocols:
            if proto == "full":
                rec, ranked = self.full(p, user, target)
            else:
                rec, ranked = self.sampled(p, user, target, proto.removeprefix("sampled-"))
            if not p.uses_llm:
                rec = dataclasses.replace(rec, short=[], coarse_order=[])
            out.append((proto, rec, ranked))
        return out


def _stats(values: list[float]) -> dict[str, float]:
    """p50/p95/mean of ``values`` (0s when empty)."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    arr = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "mean": round(float(arr.mean()), 2),
    }


def metrics_of(runs: PipelineRuns, ks: list[int], n_items: int) -> dict[str, Any]:
    """Every metric of one pipeline (see :func:`recpilot.evals.metrics.summarize`)."""
    out: dict[str, Any] = summarize(runs.ranks, ks, runs.lists, n_items)
    out["candidate_HR"] = candidate_hit_rate(runs.candidates, runs.targets)
    out["NDCG@10_ci95"] = list(bootstrap_ci(per_user_ndcg(runs.ranks, 10)))
    out["fine_fell_back"] = sum(1 for r in runs.records if r.fell_back)
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in out.items()}


def cost_of(runs: PipelineRuns) -> dict[str, Any]:
    """Measured cost per user: wall time, stage times, LLM calls and tokens."""
    recs = runs.records
    n = max(len(recs), 1)
    stages = sorted({s for r in recs for s in r.stage_ms})
    return {
        "users": len(recs),
        "wall_ms": _stats([r.wall_ms for r in recs]),
        "stage_ms_p50": {s: _stats([r.stage_ms.get(s, 0.0) for r in recs])["p50"] for s in stages},
        "llm_calls_per_user": round(sum(r.llm_calls for r in recs) / n, 2),
        "prompt_tokens_per_user": round(sum(r.prompt_tokens for r in recs) / n, 1),
        "completion_tokens_per_user": round(sum(r.completion_tokens for r in recs) / n, 1),
        "llm_ms": _stats([r.llm_ms for r in recs]),
        "llm_calls_total": sum(r.llm_calls for r in recs),
        "prompt_tokens_total": sum(r.prompt_tokens for r in recs),
        "completion_tokens_total": sum(r.completion_tokens for r in recs),
        "llm_failed_calls": sum(r.llm_failed for r in recs),
        "fine_fell_back": sum(1 for r in recs if r.fell_back),
    }


def _reblend_metrics(runs: PipelineRuns, ks: list[int]) -> dict[str, dict[str, float]]:
    """NDCG/HR for every fine weight, re-blending the recorded LLM and coarse scores."""
    out = {}
    for w in FINE_WEIGHTS:
        ranks = [
            rank_of(reblend(r.short, r.coarse_order, w), t)
            for r, t in zip(runs.records, runs.targets, strict=True)
        ]
        m = summarize(ranks, ks)
        out[f"{w:.1f}"] = {k: round(v, 5) for k, v in m.items() if k.startswith(("NDCG", "HR"))}
    return out


def _run_all(
    runner: Runner,
    pipelines: list[Pipeline],
    users: dict[str, list[str]],
    targets: dict[str, str],
    protocols: list[Protocol],
    progress: Progress,
    label: str,
    sampled_users: dict[str, set[str]] | None = None,
    cache: RunCache | None = None,
    jobs: int = 1,
) -> Runs:
    """Run each pipeline for its users (``users[pipeline.name]``) on each protocol.

    ``sampled_users[pipeline.name]``, when given, limits that pipeline's sampled
    protocols to those users (full ranking still runs for all of its users). LLM runs
    are read from / written to ``cache`` (key: ``label``, protocol, pipeline, user).
    With ``jobs`` >= 2 the non-LLM pipelines run in that many forked worker processes
    (:mod:`recpilot.evals.parallel`), chunks of users each, added back in user order: the
    runs are the same as with ``jobs`` = 1. LLM pipelines always run here (one server).
    """
    runs: Runs = {proto: {p.name: PipelineRuns() for p in pipelines} for proto in protocols}
    sampled_users = sampled_users or {}

    def protocols_of(p: Pipeline, user: str) -> list[Protocol]:
        only = sampled_users.get(p.name)
        return [x for x in protocols if x == "full" or only is None or user in only]

    total = sum(len(protocols_of(p, u)) for p in pipelines for u in users[p.name])
    task = progress.start(label, total)
    forked = [p for p in pipelines if not p.uses_llm] if jobs >= 2 else []
    chunks = [(p, chunk) for p in forked for chunk in _chunks(users[p.name], jobs)]
    if len(chunks) >= 2:

        def work(item: tuple[Pipeline, list[str]]) -> list[list[UserRun]]:
            p, chunk = item
            return [runner.user_runs(p, u, targets[u], protocols_of(p, u)) for u in chunk]

        done = map_in_workers(work, chunks, jobs, setup=runner.world.index.detach)
        for (p, chunk), chunk_runs in zip(chunks, done, strict=True):
            for user, user_runs in zip(chunk, chunk_runs, strict=True):
                for proto, rec, ranked in user_runs:
                    runs[proto][p.name].add(user, targets[user], rec, ranked)
                    progress.advance(task)
    else:
        forked = []
    for p in [p for p in pipelines if p not in forked]:
        for user in users[p.name]:
            for proto in protocols_of(p, user):
                into = runs[proto][p.name]
                key = (label, proto, p.name, user)
                saved = cache.get(key) if cache is not None and p.uses_llm else None
                if saved is None:
                    [(_, rec, ranked)] = runner.user_runs(p, user, targets[user], [proto])
                    if cache is not None and p.uses_llm and not rec.fell_back:
                        cache.put(key, targets[user], rec, ranked)
                    into.add(user, targets[user], rec, ranked)
                else:
                    into.add(user, saved[0], saved[1], saved[2])
                progress.advance(task)
    progress.done(task)
    return runs


def _chunks(users: list[str], jobs: int) -> list[list[str]]:
    """``users`` in consecutive chunks for ``jobs`` workers: ~8 chunks per worker (so a slow
    chunk does not leave a core idle at the end), at most 25 users each."""
    step = min(25, max(1, len(users) // (8 * jobs)))
    return [users[k : k + step] for k in range(0, len(users), step)]


@contextlib.contextmanager
def llm_client(settings: Settings, base_url: str | None, needed: bool) -> Iterator[Any]:
    """An :class:`LLMClient` for the run (embedded server started if needed), or None."""
    if not needed:
        yield None
        return
    with open_llm(settings, base_url) as client:
        yield client


def run_eval(
    settings: Settings,
    config: EvalConfig,
    progress: Progress | None = None,
    llm_base_url: str | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Run the whole evaluation and return every number (the results JSON as a dict).

    Args:
        settings: recpilot settings (data directory, dataset, LLM, budgets). The planner
            is forced to ``rules`` so plans are deterministic.
        config: what to run (:class:`EvalConfig`).
        progress: progress callbacks (None: silent).
        llm_base_url: an already running OpenAI-compatible server (tests); None starts
            the embedded one when LLM pipelines run (or uses ``settings.llm_base_url``).
        command: the command line, recorded in the results.

    Returns:
        The results (see :mod:`recpilot.evals.report` for the layout); nothing is written.

    Raises:
        FileNotFoundError: the dataset is missing.
        ValueError: the split leaves no user; ``config.jobs`` > 1 without ``fork``.
        TimeoutError: a worker process gave no result (see :mod:`recpilot.evals.parallel`).
    """
    progress = progress or Progress()
    if config.jobs is not None and config.jobs > 1 and not can_fork():
        raise ValueError(
            f"jobs={config.jobs} needs the 'fork' start method, which this platform lacks; "
            "use --jobs 1"
        )
    jobs = config.jobs or usable_jobs()
    git = git_info()  # at the start: the code that runs, not what is checked out at the end
    settings = settings.model_copy(update={"planner": "rules"})
    cache = None
    if config.out_dir is not None:
        shaping = config.model_dump(mode="json", exclude={"out_dir", "resume", "jobs"})
        public = settings.model_dump(mode="json", exclude=SECRET_SETTINGS)  # never store keys
        fingerprint = json.dumps([shaping, public], sort_keys=True)
        cache = RunCache(config.out_dir / "llm_runs.jsonl", fingerprint, config.resume)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    world = load_world(settings, config, progress)
    split, ks = world.split, config.ks
    meta = read_meta(settings.dataset_dir)
    clock["load_s"] = time.perf_counter() - t0

    # -- validation phase ----------------------------------------------------------------
    t = time.perf_counter()
    train_v = split.train_frame("valid")
    cat_v = world.catalogue(train_v)
    allowed = np.zeros(len(world.ids), dtype=bool)
    allowed[[cat_v.index_of[i] for i in split.universe]] = True
    targets_v = split.targets("valid")
    tuned: TuningResult | None = None
    if config.tune:
        task = progress.start("tuning on validation (grids)", 1)
        tuned = tune(
            train_v, targets_v, cat_v.index_of, len(cat_v), allowed, config.seed,
            progress=lambda label, done, total: progress.update(task, done, total),
        )  # fmt: skip
        progress.done(task)
    clock["tune_s"] = time.perf_counter() - t
    t = time.perf_counter()
    models_v = build_models(train_v, cat_v, settings, tuned, config.seed)
    eval_users = sample_users(split.users, config.max_users, config.seed)
    llm_users = sample_users(eval_users, config.users, config.seed) if config.llm else []
    coarse_names = ["als-default", "als-tuned", "hybrid"]
    val_pipes = [Pipeline(name=f"recall+coarse[{m}]", model=m) for m in coarse_names]
    n_universe = len(split.universe)
    with llm_client(settings, llm_base_url, config.llm and bool(llm_users)) as llm:
        svc_v = {m: world.services(cat_v, models_v[m], None) for m in coarse_names}
        pop_v = {str(i): float(c) for i, c in zip(cat_v.ids, cat_v.popularity, strict=True)}
        runner_v = Runner(world, svc_v, config, pop_v)
        val_runs = _run_all(
            runner_v, val_pipes, {p.name: eval_users for p in val_pipes}, targets_v, ["full"],
            progress, "validation through the graph", cache=cache, jobs=jobs,
        )  # fmt: skip
        validation = {name: metrics_of(r, ks, n_universe) for name, r in val_runs["full"].items()}
        base = max(coarse_names, key=lambda m: validation[f"recall+coarse[{m}]"]["NDCG@10"])
        fine_weights = {m: settings.fine_weight for m in config.fine_modes}
        fine_tuning: dict[str, Any] = {}
        if llm is not None and config.tune_fine_users:
            fine_users = sample_users(eval_users, config.tune_fine_users, config.seed + 2)
            for m in config.fine_modes:
                svc_v[llm_key(base, m)] = world.services(cat_v, models_v[base], llm)
            llm_pipes = [
                Pipeline(name=f"fine:{m}", model=base, fine_mode=m) for m in config.fine_modes
            ]
            fruns = _run_all(
                runner_v, llm_pipes, {p.name: fine_users for p in llm_pipes}, targets_v,
                ["full"], progress, "validation: LLM runs for fine_weight", cache=cache,
            )  # fmt: skip
            for p in llm_pipes:
                grid = _reblend_metrics(fruns["full"][p.name], ks)
                best = max(FINE_WEIGHTS, key=lambda w, g=grid: g[f"{w:.1f}"]["NDCG@10"])
                fine_weights[p.fine_mode] = best
                fine_tuning[p.fine_mode] = {
                    "users": len(fine_users), "grid": grid, "chosen": best,
                }  # fmt: skip
        clock["validation_s"] = time.perf_counter() - t

        # -- test phase ------------------------------------------------------------------
        t = time.perf_counter()
        train_t = split.train_frame("test")
        cat_t = world.catalogue(train_t)
        targets_t = split.targets("test")
        models_t = build_models(train_t, cat_t, settings, tuned, config.seed)
        pipelines = default_pipelines(base, list(config.fine_modes), llm is not None)
        hybrid_t = models_t["hybrid"]
        test_ablation = ablation(
            hybrid_t,  # type: ignore[arg-type]
            eval_users,
            np.array([cat_t.index_of[targets_t[u]] for u in eval_users]),
            allowed,
        )
        svc_t = _services_for(world, cat_t, models_t, llm, base, fine_weights, pipelines)
        pop_t = {str(i): float(c) for i, c in zip(cat_t.ids, cat_t.popularity, strict=True)}
        runner_t = Runner(world, svc_t, config, pop_t)
        protocols: list[Protocol] = ["full"]
        if config.sampled:
            protocols += [f"sampled-{m}" for m in SAMPLERS]  # type: ignore[misc]
        users_of = {p.name: (llm_users if p.uses_llm else eval_users) for p in pipelines}
        llm_sampled = set(llm_users[: config.llm_sampled_users])
        test_runs = _run_all(
            runner_t, pipelines, users_of, targets_t, protocols, progress, "test phase",
            {p.name: llm_sampled for p in pipelines if p.uses_llm}, cache, jobs,
        )  # fmt: skip
        clock["test_s"] = time.perf_counter() - t

        # -- cold-start slice ------------------------------------------------------------
        t = time.perf_counter()
        cold_llm = llm_users[: min(config.cold_llm_users, config.cold_users)]
        others = [u for u in eval_users if u not in set(cold_llm)]
        cold_users = cold_llm + sample_users(
            others, max(config.cold_users - len(cold_llm), 0), config.seed + 1
        )
        cold: dict[str, Any] = {}
        for h in config.cold_histories if cold_users else []:
            train_h = truncate_histories(train_t, cold_users, h)
            cat_h = world.catalogue(train_h)
            models_h = build_models(train_h, cat_h, settings, tuned, config.seed)
            svc_h = _services_for(world, cat_h, models_h, llm, base, fine_weights, pipelines)
            runner_h = Runner(world, svc_h, config, pop_t)
            cold_of = {p.name: (cold_llm if p.uses_llm else cold_users) for p in pipelines}
            hruns = _run_all(
                runner_h, pipelines, cold_of, targets_t, ["full"], progress,
                f"cold start: first {h} interaction(s)", cache=cache, jobs=jobs,
            )  # fmt: skip
            cold[str(h)] = {
                name: metrics_of(r, ks, n_universe)
                for name, r in hruns["full"].items() if r.users
            }  # fmt: skip
        if cold_users:
            full_set = set(cold_users)
            cold["full"] = {
                p.name: metrics_of(
                    test_runs["full"][p.name].subset(set(cold_llm) if p.uses_llm else full_set),
                    ks,
                    n_universe,
                )
                for p in pipelines
                if not p.uses_llm or cold_llm
            }
        clock["cold_s"] = time.perf_counter() - t

    # -- aggregate -------------------------------------------------------------------------
    results = {
        proto: {name: metrics_of(r, ks, n_universe) for name, r in by.items() if r.users}
        for proto, by in test_runs.items()
    }
    llm_sample: dict[str, Any] = {"users": len(llm_users), "user_ids": llm_users}
    if llm_users:
        chosen = set(llm_users)
        for proto, by in test_runs.items():
            on = chosen if proto == "full" else set(llm_users[: config.llm_sampled_users])
            llm_sample[proto] = {
                name: metrics_of(r.subset(on), ks, n_universe)
                for name, r in by.items()
                if r.subset(on).users
            }
        paired = {}
        base_runs = test_runs["full"][f"recall+coarse[{base}]"].subset(chosen)
        base_ndcg = dict(zip(base_runs.users, per_user_ndcg(base_runs.ranks, 10), strict=True))
        for p in pipelines:
            if not p.uses_llm:
                continue
            r = test_runs["full"][p.name]
            diff = [
                v - base_ndcg[u] for u, v in zip(r.users, per_user_ndcg(r.ranks, 10), strict=True)
            ]
            paired[p.name] = {
                "delta_NDCG@10": round(float(np.mean(diff)), 5) if diff else None,
                "ci95": [round(x, 5) for x in bootstrap_ci(diff, seed=config.seed)],
                "users": len(diff),
            }
        llm_sample["paired_vs_base"] = paired
        llm_sample["fine_weight_sensitivity_test"] = {
            p.name: _reblend_metrics(test_runs["full"][p.name], ks)
            for p in pipelines if p.uses_llm
        }  # fmt: skip
    cost = {p.name: cost_of(test_runs["full"][p.name]) for p in pipelines}
    clock["total_s"] = time.perf_counter() - t0
    index_meta = world.index.metadata()
    return {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "dataset": {
            "name": settings.dataset,
            "dir": str(settings.dataset_dir),
            "interactions_sha256": meta.interactions_sha256,
            "source": meta.source,
            "n_items": meta.n_items,
            "n_users": meta.n_users,
            "n_interactions": meta.n_interactions,
        },
        "split": {
            "protocol": f"leave-one-out, {split.tie_rule}; valid = second last, "
            "test = last; test phase trains on train + valid",
            "order": split.order,
            "order_note": split.order_note,
            "timestamps": split.timestamps,
            "tie_rule": split.tie_rule,
            "ties_with_train": split.ties_with_train,
            "min_user": split.min_user,
            "min_item": split.min_item,
            "users": len(split.users),
            "universe_items": n_universe,
            "interactions": len(split.interactions),
            "test_valid_timestamp_ties": split.ties,
            "eval_users": len(eval_users),
        },
        "config": config.model_dump(mode="json"),
        "settings": {
            k: getattr(settings, k, None)
            for k in (
                "planner",
                "coarse_keep",
                "recall_per_channel",
                "fine_weight",
                "fine_mode",
                "fine_top_n",
                "fine_max_llm_items",
                "fine_prompt_tokens",
                "history_items",
                "llm_model",
                "llm_context_tokens",
                "embedded_threads",
                "embedding_model",
                "als_factors",
                "als_iterations",
                "als_regularization",
                "als_alpha",
            )
        },  # fmt: skip
        "models": {
            "llm": settings.llm_model if llm_users else None,
            "llm_endpoint": ("explicit" if (llm_base_url or settings.llm_base_url) else "embedded")
            if llm_users
            else None,  # fmt: skip
            "embedding": {"encoder": index_meta.get("encoder"), "dim": index_meta.get("dim")},
            "coarse_base_for_llm": base,
            "fine_weight_used": fine_weights,
        },
        "git": git,
        "tuning": tuned.model_dump(mode="json") if tuned else None,
        "ablation_test": test_ablation,
        "validation": validation,
        "fine_weight_tuning": fine_tuning,
        "pipelines": [p.model_dump() for p in pipelines],
        "results": results,
        "llm_sample": llm_sample,
        "cost": cost,
        "cold_start": {"users": len(cold_users), "llm_users": len(cold_llm), "by_history": cold},
        "reference": REFERENCE,
        "timing_s": {k: round(v, 1) for k, v in clock.items()},
        "jobs": jobs,  # worker processes of the non-LLM runs (numbers do not depend on it)
        "_per_user": _per_user_rows(test_runs),
    }


def _services_for(
    world: World,
    catalogue: Catalogue,
    models: dict[str, CollaborativeModel],
    llm: LLMClient | None,
    base: str,
    fine_weights: dict[str, float],
    pipelines: list[Pipeline],
) -> dict[str, Services]:
    """Services per coarse model, plus one per fine mode with the LLM client and that
    mode's ``fine_weight`` (key :func:`llm_key`)."""
    out = {m: world.services(catalogue, model, None) for m, model in models.items()}
    if llm is not None:
        for p in pipelines:
            if p.uses_llm:
                svc = world.services(catalogue, models[base], llm)
                out[llm_key(base, p.fine_mode)] = with_budgets(
                    svc, fine_weight=fine_weights.get(p.fine_mode, world.settings.fine_weight)
                )
    return out


def llm_key(model: str, fine_mode: str) -> str:
    """Services key of the LLM pipelines on coarse ``model`` with ``fine_mode``."""
    return f"{model}+llm:{fine_mode}"


def _per_user_rows(runs: Runs) -> list[dict[str, Any]]:
    """One row per (protocol, pipeline, user): rank, candidates, cost, the top list."""
    rows = []
    for proto, by in runs.items():
        for name, r in by.items():
            for k, user in enumerate(r.users):
                rec = r.records[k]
                rows.append({
                    "protocol": proto,
                    "pipeline": name,
                    "user_id": user,
                    "target": r.targets[k],
                    "rank": r.ranks[k],
                    "in_candidates": r.targets[k] in set(r.candidates[k]),
                    "n_candidates": len(r.candidates[k]),
                    "wall_ms": round(rec.wall_ms, 2),
                    "llm_calls": rec.llm_calls,
                    "prompt_tokens": rec.prompt_tokens,
                    "completion_tokens": rec.completion_tokens,
                    "fine_fell_back": rec.fell_back,
                    "top": " ".join(r.lists[k][:20]) if proto == "full" else "",
                })  # fmt: skip
    return rows


def default_out_dir(settings: Settings) -> Path:
    """``RECPILOT_HOME/evals/<dataset>-<UTC timestamp>/``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return settings.home / "evals" / f"{settings.dataset}-{stamp}"
