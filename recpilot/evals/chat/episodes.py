"""Episodes: targets from the leave-one-out split, the split-trained agent, the turn loop.

Protocol of one run (all seeded):

1. Leave-one-out split of the dataset (:func:`recpilot.evals.split.leave_one_out`, the
   same rule as ``recpilot eval``: by time with seeded tie-breaks, or a seeded random
   hold-out when the timestamps are not real). A seeded sample of ``users`` split users;
   each user's **target** is their test item.
2. Two settings, the same users in both: ``known`` — the agent gets the user id and the
   user's training history (the coarse model is trained on the test phase's training
   data: train + validation, never a test item); ``new`` — no user id, and the sampled
   users' rows are removed from what the coarse model and popularity learn from, as in
   ``recpilot eval-cold-start``.
3. Each pipeline is the product's :class:`~recpilot.agent.runner.Recommender` driven
   through ``run(user_id, message, k, thread_id=…)`` only, one chat thread per episode;
   the controller is the rules plan without an LLM (``rules``), or the LLM
   understanding and plan with fine ranking off (``llm``) or listwise (``llm+fine``).
4. An episode: the simulator's opening, then up to ``turns`` agent turns; it stops at the
   first turn whose ``k`` shown items contain the target (the user found it). The
   simulator then sees the reply and the shown items (:class:`Observation`), nothing more.

Each finished episode is appended to ``episodes.jsonl`` in the output folder under the
key ``(pipeline, setting, user, seed)`` with a fingerprint of what shapes results, so
an interrupted run resumes where it stopped (``--resume``).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field, field_validator

from recpilot.agent.runner import Recommender
from recpilot.agent.services import Services, build_services
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.data.embeddings import make_encoder
from recpilot.data.item_index import ItemIndex
from recpilot.evals.chat.simulator import (
    LLMSimulator,
    Message,
    Observation,
    Shown,
    Simulator,
    SimulatorLLMSettings,
    Stated,
    Target,
    TargetItem,
    TemplateSimulator,
    asks_question,
    display_title,
)
from recpilot.evals.split import LOOSplit, leave_one_out, user_seed
from recpilot.funnel.scorers.als import CollaborativeModel
from recpilot.funnel.scorers.hybrid import coarse_model, load_params
from recpilot.llm.client import LLMClient
from recpilot.stores.profiles import forget_profile

Setting = Literal["known", "new"]
SETTINGS: tuple[Setting, ...] = ("known", "new")


@dataclass(frozen=True)
class PipelineSpec:
    """One agent configuration: LLM on/off, planner, fine-ranking mode, chat controller
    (``settings.controller``: the LLM agent, the rules agent, or the earlier fixed
    understand → plan pipeline)."""

    use_llm: bool
    planner: Literal["llm", "rules"]
    fine_mode: Literal["pointwise", "listwise", "off"]
    description: str
    controller: Literal["llm", "rules", "pipeline"] = "llm"


PIPELINES: dict[str, PipelineSpec] = {
    "rules": PipelineSpec(False, "rules", "off", "rules controller, no LLM", "rules"),
    "llm": PipelineSpec(True, "llm", "off", "LLM agent controller (one call a turn), fine off"),
    "llm+fine": PipelineSpec(True, "llm", "listwise", "LLM agent controller + listwise fine"),
    "pipeline": PipelineSpec(
        True, "llm", "off", "the earlier fixed workflow: LLM understanding + plan, fine off",
        "pipeline",
    ),
}


class ChatEvalConfig(BaseModel):
    """What ``recpilot eval-chat`` runs (every field is written to the results JSON)."""

    users: int = Field(default=50, ge=1, description="Users per setting (seeded sample).")
    turns: int = Field(default=5, ge=1, le=20, description="T: agent turns per episode.")
    k: int = Field(default=10, ge=1, le=100, description="Items shown per turn.")
    seed: int = Field(default=0, description="Seed of users, split ties, simulator, ALS.")
    settings: list[Setting] = Field(default_factory=lambda: list(SETTINGS))
    pipelines: list[str] = Field(default_factory=lambda: ["rules", "llm"])
    simulator: Literal["template", "llm"] = "template"
    min_user: int = Field(default=5, ge=3)
    min_item: int = Field(default=5, ge=1)
    split: Literal["auto", "time", "random"] = "auto"
    out_dir: Path | None = None
    resume: bool = False

    @field_validator("pipelines")
    @classmethod
    def _known_pipelines(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in PIPELINES]
        if unknown:
            raise ValueError(f"unknown pipeline(s) {unknown}; known: {', '.join(PIPELINES)}")
        if not value:
            raise ValueError("at least one pipeline is needed")
        return list(dict.fromkeys(value))

    @field_validator("settings")
    @classmethod
    def _some_setting(cls, value: list[Setting]) -> list[Setting]:
        if not value:
            raise ValueError("at least one setting (known, new) is needed")
        return list(dict.fromkeys(value))

    def uses_llm(self) -> bool:
        """True when a pipeline or the simulator needs an LLM endpoint."""
        return self.simulator == "llm" or any(PIPELINES[p].use_llm for p in self.pipelines)


class TurnRecord(BaseModel):
    """One agent turn of an episode (what was said, shown, measured)."""

    turn: int
    message: str
    kind: str
    stated: Stated = Field(default_factory=Stated)
    dropped: int = 0
    shown: list[str]
    rank: int | None  # 1-based rank of the target among the shown items
    latency_ms: float
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_failed: int = 0
    fallbacks: int = 0
    violations: int = 0  # shown items contradicting what the user stated so far
    repeated: int = 0  # shown items already shown earlier in the episode
    asked: bool = False  # the agent's reply asked a question
    plan_source: str = ""
    sim_calls: int = 0
    sim_ms: float = 0.0
    sim_tokens: int = 0


class Episode(BaseModel):
    """One simulated conversation."""

    pipeline: str
    setting: Setting
    user_id: str
    target: str
    seed: int
    turns: list[TurnRecord]

    @property
    def first_hit(self) -> int | None:
        """Turn (1-based) whose list first showed the target, or None."""
        return next((t.turn for t in self.turns if t.rank is not None), None)

    @property
    def hit_rank(self) -> int | None:
        """The target's rank in that turn's list, or None."""
        return next((t.rank for t in self.turns if t.rank is not None), None)


class EpisodeCache:
    """Finished episodes in ``episodes.jsonl``, keyed by ``(pipeline, setting, user, seed)``.

    Lines with another fingerprint (a different configuration) are ignored, so a resumed
    run never mixes configurations.

    Args:
        path: the JSONL file.
        fingerprint: what shapes results (config without paths, settings that matter).
        resume: read existing lines; without it an existing non-empty file is refused.

    Raises:
        ValueError: not ``resume`` and ``path`` already holds episodes.
    """

    def __init__(self, path: Path, fingerprint: str, resume: bool) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.episodes: dict[tuple[str, str, str, int], Episode] = {}
        if resume and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
                if row.get("fingerprint") == fingerprint:
                    ep = Episode.model_validate(row["episode"])
                    self.episodes[self.key(ep)] = ep
        elif path.is_file() and path.stat().st_size:
            raise ValueError(
                f"{path.parent} holds episodes ({path.name}); pass --resume to reuse them, "
                "or choose another --out"
            )

    @staticmethod
    def key(ep: Episode) -> tuple[str, str, str, int]:
        """The cache key of an episode."""
        return (ep.pipeline, ep.setting, ep.user_id, ep.seed)

    def get(self, pipeline: str, setting: str, user: str, seed: int) -> Episode | None:
        """The saved episode, or None."""
        return self.episodes.get((pipeline, setting, user, seed))

    def put(self, ep: Episode) -> None:
        """Append one episode (flushed at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"fingerprint": self.fingerprint, "episode": ep.model_dump(mode="json")}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        self.episodes[self.key(ep)] = ep


# -- targets and services -----------------------------------------------------------------
def cooccurring_history(train: pd.DataFrame, user: str, target: str) -> list[str]:
    """The user's training items, most co-occurring with ``target`` first.

    Co-occurrence = the number of *other* users whose training rows contain both items;
    ties keep the user's most recent item first.

    Args:
        train: the phase's training frame (``user_id``, ``item_id``, in time order).
        user: the user.
        target: the target item id.

    Returns:
        Item ids (only items that co-occur at least once).
    """
    fans = set(train.loc[train["item_id"] == target, "user_id"]) - {user}
    if not fans:
        return []
    mine = train.loc[train["user_id"] == user, "item_id"].tolist()[::-1]
    others = train[train["user_id"].isin(fans) & train["item_id"].isin(set(mine))]
    counts = others.groupby("item_id").size().to_dict()
    ranked = sorted(
        (i for i in mine if counts.get(i, 0) > 0), key=lambda i: -counts[i]
    )  # stable: recency among ties
    return ranked


def make_target(catalogue: Catalogue, train: pd.DataFrame, user: str, target: str) -> Target:
    """The simulated user's knowledge: the target's attributes and their history."""
    item = catalogue.get(target)
    history = cooccurring_history(train, user, target)[:5]
    titles = tuple(display_title(catalogue.get(i).title, catalogue.get(i).year) for i in history)
    return Target(
        user_id=user,
        item=TargetItem(
            item_id=item.item_id,
            title=item.title,
            year=item.year,
            categories=tuple(item.categories),
            text=item.text or "",
        ),
        cooccurring=titles,
    )


def user_order(users: list[str], seed: int) -> list[str]:
    """A seeded permutation of ``users``: the run takes its first N, so a smaller N is a
    prefix of a larger one (a killed run's finished users are the first N of a rerun)."""
    rng = user_seed(seed, "eval-chat", "users")
    return [users[i] for i in rng.permutation(len(users))]


@dataclass
class SplitWorld:
    """What every episode shares: the split, the chosen users, per-setting services."""

    split: LOOSplit
    users: list[str]
    targets: dict[str, Target]
    parts: dict[Setting, tuple[Catalogue, CollaborativeModel]]
    index: ItemIndex
    encoder: Any
    seconds: float


def build_world(settings: Settings, config: ChatEvalConfig) -> SplitWorld:
    """Split the dataset, pick the users, train one coarse model per setting.

    Raises:
        FileNotFoundError: dataset or Chroma index missing (message names the command).
        ValueError: the split leaves no user.
    """
    started = time.perf_counter()
    full = Catalogue.load(settings.dataset_dir)
    split = leave_one_out(
        full.interactions, config.min_user, config.min_item, config.split, config.seed
    )
    index = ItemIndex.open(settings)
    if not index.is_built():
        raise FileNotFoundError(
            f"no Chroma index for dataset {settings.dataset!r}; run `recpilot index` first"
        )
    train = split.train_frame("test")
    targets = split.targets("test")
    users = user_order([u for u in split.users if u in targets], config.seed)[: config.users]
    known_cat = Catalogue(full.items, train)
    parts: dict[Setting, tuple[Catalogue, CollaborativeModel]] = {}
    for setting in config.settings:
        rows = train if setting == "known" else train[~train["user_id"].isin(set(users))]
        rows = rows.reset_index(drop=True)
        catalogue = known_cat if setting == "known" else Catalogue(full.items, rows)
        als = CollaborativeModel.train(
            rows, catalogue.index_of, len(catalogue),
            factors=settings.als_factors, iterations=settings.als_iterations,
            regularization=settings.als_regularization, alpha=settings.als_alpha,
            seed=config.seed,
        )  # fmt: skip
        model = coarse_model(
            als,
            catalogue.interactions,
            catalogue.index_of,
            settings.coarse_model,
            load_params(settings.models_dir),
        )
        parts[setting] = (catalogue, model)
    return SplitWorld(
        split=split,
        users=users,
        targets={u: make_target(known_cat, train, u, targets[u]) for u in users},
        parts=parts,
        index=index,
        encoder=make_encoder(settings),
        seconds=round(time.perf_counter() - started, 1),
    )


def services_factory(
    world: SplitWorld, setting: Setting
) -> Callable[[Settings, LLMClient | None], Services]:
    """A ``Recommender(services=…)`` factory serving ``setting``'s split-trained model."""
    catalogue, model = world.parts[setting]
    vectors = world.index.vectors([str(i) for i in catalogue.ids])

    def build(settings: Settings, llm: LLMClient | None) -> Services:
        return build_services(
            settings, llm, catalogue=catalogue, index=world.index, encoder=world.encoder,
            item_vectors=vectors, coarse_model=model,
        )  # fmt: skip

    return build


# -- one episode ---------------------------------------------------------------------------
def _violations(items: list[Shown], stated: list[Stated]) -> int:
    """Shown items contradicting the constraints stated so far (any wanted category,
    no excluded one, inside the stated decade)."""
    include = {c for s in stated for c in s.include}
    exclude = {c for s in stated for c in s.exclude}
    decades = [s.decade for s in stated if s.decade is not None]
    bad = 0
    for it in items:
        cats = set(it.categories)
        wrong = bool(include) and not (cats & include)
        wrong = wrong or bool(cats & exclude)
        if decades:
            d = decades[-1]
            wrong = wrong or it.year is None or not d <= it.year <= d + 9
        bad += int(wrong)
    return bad


def run_episode(
    rec: Recommender,
    sim: Simulator,
    pipeline: str,
    setting: Setting,
    seed: int,
    turns: int,
    k: int,
) -> Episode:
    """Play one conversation (module docstring, step 4) and return its record.

    Args:
        rec: an entered :class:`Recommender` of the pipeline and setting.
        sim: the simulator of this user (fresh: it keeps the conversation's state).
        pipeline, setting, seed: recorded in the episode.
        turns: T, the most agent turns.
        k: items shown per turn.

    Returns:
        The :class:`Episode` (stops at the first turn showing the target).
    """
    spec = PIPELINES[pipeline]
    target = sim.target
    user_id = target.user_id if setting == "known" else None
    if user_id is not None and rec.store is not None:
        forget_profile(rec.store, user_id)  # episodes must not learn from each other
    thread = f"eval-chat-{pipeline}-{setting}-{target.user_id}-{seed}-{uuid.uuid4().hex[:8]}"
    message: Message = sim.first()
    records: list[TurnRecord] = []
    stated: list[Stated] = []
    seen_before: set[str] = set()
    for turn in range(1, turns + 1):
        stated.append(message.stated)
        started = time.perf_counter()
        result = rec.run(user_id, message.text, k=k, thread_id=thread, fine_mode=spec.fine_mode)
        latency = (time.perf_counter() - started) * 1000
        shown = [
            Shown(item_id=i.item_id, title=i.title, year=i.year, categories=i.categories)
            for i in result.items
        ]
        ids = [s.item_id for s in shown]
        rank = ids.index(target.item.item_id) + 1 if target.item.item_id in ids else None
        records.append(
            TurnRecord(
                turn=turn,
                message=message.text,
                kind=message.kind,
                stated=message.stated,
                dropped=message.dropped,
                shown=ids,
                rank=rank,
                latency_ms=round(latency, 1),
                llm_calls=result.llm.calls,
                prompt_tokens=result.llm.prompt_tokens,
                completion_tokens=result.llm.completion_tokens,
                llm_failed=result.llm.failed,
                fallbacks=len(result.fallbacks),
                violations=_violations(shown, stated),
                repeated=sum(1 for i in ids if i in seen_before),
                asked=asks_question(Observation(reply=result.reply, items=shown)),
                plan_source=result.plan.source if result.plan else "tools",
                sim_calls=message.sim_calls,
                sim_ms=message.sim_ms,
                sim_tokens=message.sim_prompt_tokens + message.sim_completion_tokens,
            )
        )
        seen_before.update(ids)
        if rank is not None or turn == turns:
            break
        message = sim.next(Observation(reply=result.reply, items=shown))
    if user_id is not None and rec.store is not None:
        forget_profile(rec.store, user_id)
    return Episode(
        pipeline=pipeline,
        setting=setting,
        user_id=target.user_id,
        target=target.item.item_id,
        seed=seed,
        turns=records,
    )


# -- the run ------------------------------------------------------------------------------
@contextlib.contextmanager
def _endpoint(settings: Settings, needed: bool, base_url: str | None) -> Iterator[str | None]:
    """One LLM endpoint for the whole run (the embedded server started once), or None."""
    if not needed:
        yield None
        return
    if base_url or settings.llm_base_url:
        yield base_url or settings.llm_base_url
        return
    from recpilot.llm.server import resolve_llm

    with resolve_llm(settings) as url:
        yield url


def agent_settings(settings: Settings, spec: PipelineSpec, scratch: Path, url: str | None,
                   embedded: bool) -> Settings:  # fmt: skip
    """The settings one pipeline's Recommender runs with.

    Conversation checkpoints and profiles go to ``scratch`` (never the user's home),
    traces are off, the planner is the pipeline's, and an LLM pipeline talks to the
    run's one endpoint ``url`` (the embedded server's JSON form kept when recpilot
    started it).
    """
    update: dict[str, Any] = {
        "home": scratch,
        "traces": False,
        "store_url": None,
        "planner": spec.planner,
        "fine_mode": spec.fine_mode,
        "controller": spec.controller,
    }
    if spec.use_llm and url:
        update["llm_base_url"] = url
        if embedded and settings.llm_json_mode == "auto":
            update["llm_json_mode"] = "json_object_schema"
    return settings.model_copy(update=update)


def fingerprint_of(settings: Settings, config: ChatEvalConfig) -> str:
    """What shapes the episodes, as a string (the cache ignores episodes of another)."""
    shaping = config.model_dump(mode="json", exclude={"out_dir", "resume", "users"})
    keys = (
        "dataset", "coarse_model", "coarse_keep", "recall_per_channel", "fine_weight",
        "fine_top_n", "history_items", "llm_model", "als_factors", "als_iterations",
        "als_regularization", "als_alpha", "sample_generation",
    )  # fmt: skip
    public = {k: getattr(settings, k, None) for k in keys}
    return json.dumps([shaping, public], sort_keys=True, default=str)


def run_chat_eval(
    settings: Settings,
    config: ChatEvalConfig,
    progress: Callable[[int, int], None] = lambda done, total: None,
    llm_base_url: str | None = None,
) -> dict[str, Any]:
    """Run every (user, setting, pipeline) episode and return the raw results.

    Args:
        settings: data directory and dataset (its index must be built; ``recpilot train``
            writes the hybrid parameters the coarse model uses).
        config: the run (:class:`ChatEvalConfig`).
        progress: called as ``(episodes done, total)``.
        llm_base_url: an already running OpenAI-compatible endpoint (tests); None: the
            settings' endpoint, or the embedded server started once for the run.

    Returns:
        ``{"config", "dataset", "split", "users", "episodes": [Episode dicts], "seconds",
        "endpoint"}`` — :func:`recpilot.evals.chat.metrics.summarize_run` aggregates it.

    Raises:
        FileNotFoundError: dataset or index missing.
        ValueError: the split leaves no user, or the output folder holds episodes of an
            earlier run and ``resume`` is off.
        recpilot.llm.server.LLMSetupError: the embedded LLM cannot start.
    """
    started = time.perf_counter()
    cache = None
    out = config.out_dir
    if out is not None:
        cache = EpisodeCache(out / "episodes.jsonl", fingerprint_of(settings, config),
                             config.resume)  # fmt: skip
    world = build_world(settings, config)
    jobs = [
        (user, setting, pipeline)
        for user in world.users
        for setting in config.settings
        for pipeline in config.pipelines
    ]
    pending = [
        (user, setting, pipeline)
        for user, setting, pipeline in jobs
        if cache is None or cache.get(pipeline, setting, user, config.seed) is None
    ]
    episodes: list[Episode] = []
    scratch = (out or settings.home / "evals" / "chat") / "agent-home"
    sim_settings = SimulatorLLMSettings()
    embedded = (
        not settings.llm_base_url
    )  # a passed URL without settings = the embedded server (tests)
    done = 0
    progress(0, len(jobs))
    with contextlib.ExitStack() as stack:
        # nothing left to run (a resumed, finished run): no LLM started, no agent built
        url = stack.enter_context(
            _endpoint(settings, config.uses_llm() and bool(pending), llm_base_url)
        )
        recs: dict[tuple[str, str], Recommender] = {}
        for setting in config.settings if pending else []:
            for pipeline in config.pipelines:
                spec = PIPELINES[pipeline]
                s = agent_settings(settings, spec, scratch, url, embedded)
                rec = Recommender(s, use_llm=spec.use_llm,
                                  services=services_factory(world, setting))  # fmt: skip
                recs[(setting, pipeline)] = stack.enter_context(rec)
        client = None
        if config.simulator == "llm" and pending:
            from openai import OpenAI

            client = OpenAI(base_url=sim_settings.base_url or url, api_key=sim_settings.api_key)
        for user, setting, pipeline in jobs:
            ep = cache.get(pipeline, setting, user, config.seed) if cache else None
            if ep is None:
                target = world.targets[user]
                sim: Simulator = (
                    TemplateSimulator(target, config.seed)
                    if client is None
                    else LLMSimulator(target, client, sim_settings, config.seed)
                )
                ep = run_episode(recs[(setting, pipeline)], sim, pipeline, setting,
                                 config.seed, config.turns, config.k)  # fmt: skip
                if cache is not None:
                    cache.put(ep)
            episodes.append(ep)
            done += 1
            progress(done, len(jobs))
    split = world.split
    return {
        "config": config.model_dump(mode="json"),
        "dataset": settings.dataset,
        "split": {
            "order": split.order,
            "order_note": split.order_note,
            "tie_rule": split.tie_rule,
            "test_valid_timestamp_ties": split.ties,
            "ties_with_train": split.ties_with_train,
            "users": len(split.users),
            "universe_items": len(split.universe),
        },
        "users": world.users,
        "pipelines": {p: PIPELINES[p].description for p in config.pipelines},
        "simulator": config.simulator,
        "simulator_model": sim_settings.model if config.simulator == "llm" else None,
        "endpoint": (None if not config.uses_llm() else ("embedded" if embedded else "explicit")),
        "llm_model": settings.llm_model if config.uses_llm() else None,
        "episodes": [e.model_dump(mode="json") for e in episodes],
        "setup_s": world.seconds,
        "seconds": round(time.perf_counter() - started, 1),
    }
