"""``recpilot enrich``: the LLM writes a description and keyword tags for every item.

The survey's "LLM as feature engineer" for items. Per item, one JSON-schema call over
its facts (title, categories, text, rating statistics — :class:`~.facts.ItemFacts`);
the description is fact-checked by code (:func:`~.facts.check_facts`); its failing
sentences are cut, and when none passes it is regenerated once with its problems
named, else kept out (the problems are recorded either way).

- **Cache** — one JSON line per finished item in
  ``<dataset>/enrichment/<model>.jsonl``, keyed by item id and a content hash (facts +
  prompt + model): a rerun skips items already done for the same content, a changed
  item or prompt is redone, an interrupted run resumes where it stopped.
- **Active enrichment** — :func:`activate` writes ``<dataset>/enrichment.parquet`` from
  the cache (passing entries only); :class:`~recpilot.data.catalogue.Catalogue` reads it
  into each item's embedded text (feature encoding), so ``recpilot index`` must run
  after it (the services refuse an index built from other text). :func:`deactivate`
  removes the file (the cache stays), which is how enrichment is measured on and off.
- **Concurrency** — up to ``concurrency`` calls in flight (threads; 1 for the embedded
  server, which serves one request at a time).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field, ValidationError

from recpilot.content.facts import ItemFacts, backed_sentences, check_facts, item_facts
from recpilot.data.catalogue import ENRICHMENT_FILE, Catalogue
from recpilot.llm.client import LLMClient, LLMError
from recpilot.prompts import load_prompt

PROMPT = "enrich"
VERSION = 2  # of this job's code path (part of the cache key): 2 = failing sentences cut
ENRICH_SCHEMA = {
    "type": "object",
    "properties": {
        "description": {"type": "string", "minLength": 1, "maxLength": 400},
        "tags": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 30},
            "minItems": 1,
            "maxItems": 8,
        },
    },
    "required": ["description", "tags"],
    "additionalProperties": False,
}


class Enrichment(BaseModel):
    """One item's enrichment, as cached.

    Attributes:
        item_id: the item.
        content_sha: sha256 of the facts, the prompt and the model (the cache key).
        model: the LLM's model name.
        description: the fact-checked description; None when it failed twice.
        tags: lower-case keyword tags (≤ 8), those that passed the fact-check.
        problems: the fact-check's problems of each attempt that failed it (a cut
            sentence's problems included).
        tokens: prompt + completion tokens spent on the item.
        seconds: wall time of the item's calls (s).
    """

    item_id: str
    content_sha: str
    model: str
    description: str | None
    tags: list[str] = Field(default_factory=list)
    problems: list[list[str]] = Field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0


class EnrichReport(BaseModel):
    """What one :func:`enrich_items` run did.

    Attributes:
        requested: items asked for; cached: skipped (same content done before);
        done: enriched now; failed: of those, without a passing description;
        seconds: wall time (s); items_per_hour: ``done / seconds × 3600`` (0 if none);
        tokens: tokens spent now; cache: the cache file.
    """

    requested: int
    cached: int
    done: int
    failed: int
    seconds: float
    items_per_hour: float
    tokens: int
    cache: str


def model_slug(model: str) -> str:
    """A file-name-safe form of a model name (``qwen2.5-coder-1.5b-instruct``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"


def cache_file(dataset_dir: Path, model: str) -> Path:
    """``<dataset_dir>/enrichment/<model>.jsonl``."""
    return Path(dataset_dir) / "enrichment" / f"{model_slug(model)}.jsonl"


def content_sha(facts: ItemFacts, model: str) -> str:
    """sha256 (hex) of what determines an item's enrichment: facts, prompt, model."""
    text = "\n".join([facts.lines(), load_prompt(PROMPT), model, str(VERSION)])
    return hashlib.sha256(text.encode()).hexdigest()


def load_cache(path: Path) -> dict[str, Enrichment]:
    """The cached enrichments by item id (the last line of an item wins).

    A torn last line (a run killed mid-write) or any unreadable line is skipped.
    """
    found: dict[str, Enrichment] = {}
    if not Path(path).is_file():
        return found
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entry = Enrichment.model_validate_json(line)
        except ValidationError:
            continue
        found[entry.item_id] = entry
    return found


def _facts_prompt(facts: ItemFacts, avoid: list[str]) -> str:
    note = ("Your previous answer was rejected because: " + "; ".join(avoid)
            + ". Do not repeat those claims.") if avoid else ""  # fmt: skip
    return load_prompt(PROMPT).format(noun=facts.noun, facts=facts.lines(), note=note)


def enrich_one(
    llm: LLMClient, catalogue: Catalogue, facts: ItemFacts, *, attempts: int = 2
) -> Enrichment:
    """Enrich one item: description and tags, fact-checked, one regeneration at most.

    Args:
        llm: the LLM client.
        catalogue: for the fact-check's category vocabulary.
        facts: the item's facts.
        attempts: LLM calls at most.

    Returns:
        The :class:`Enrichment` (``description`` None when no attempt passed).

    Raises:
        recpilot.llm.client.LLMError: the backend is unreachable or misconfigured
            (invalid output is recorded as a problem instead).
    """
    sha = content_sha(facts, llm.model_name)
    entry = Enrichment(item_id=facts.item_id, content_sha=sha, model=llm.model_name,
                       description=None)  # fmt: skip
    start = time.perf_counter()
    avoid: list[str] = []
    for _ in range(attempts):
        messages = [{"role": "user", "content": _facts_prompt(facts, avoid)}]
        try:
            out = llm.json(messages, ENRICH_SCHEMA, purpose="enrich", max_tokens=120)
        except LLMError as exc:
            if exc.unreachable:
                raise
            entry.problems.append([f"LLM error: {exc}"])
            continue
        finally:
            if llm.calls:
                entry.tokens += llm.calls[-1].prompt_tokens + llm.calls[-1].completion_tokens
        description = " ".join(out["description"].split())
        tags = list(dict.fromkeys(" ".join(t.lower().split()) for t in out["tags"]))
        tags = [t for t in tags if t and not check_facts(t, facts, catalogue)]
        problems = check_facts(description, facts, catalogue)
        if problems:
            entry.problems.append(problems)
            description, _dropped = backed_sentences(description, facts, catalogue)
        if description:
            entry.description, entry.tags = description, tags
            break
        avoid = problems
    entry.seconds = time.perf_counter() - start
    return entry


def enrich_items(
    llm: LLMClient,
    catalogue: Catalogue,
    dataset_dir: Path,
    *,
    noun: str = "item",
    item_ids: list[str] | None = None,
    limit: int | None = None,
    concurrency: int = 1,
    on_item: Callable[[Enrichment | None], None] | None = None,
) -> EnrichReport:
    """Enrich items not yet cached for their current content; append each to the cache.

    Args:
        llm: the LLM client.
        catalogue: the dataset.
        dataset_dir: the dataset folder (cache under ``enrichment/``).
        noun: the dataset's item noun.
        item_ids: which items (default: all, most popular first).
        limit: at most this many items (after the order above).
        concurrency: LLM calls in flight (≥ 1).
        on_item: called once per requested item (None for a cached one), e.g. a
            progress bar's advance.

    Returns:
        :class:`EnrichReport`.

    Raises:
        ValueError: an unknown item id, or ``concurrency`` < 1.
        recpilot.llm.client.LLMError: the backend became unreachable; what finished is
            in the cache, and a rerun resumes.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if item_ids is None:
        order = sorted(range(len(catalogue)), key=lambda p: -catalogue.popularity[p])
        item_ids = [str(catalogue.ids[p]) for p in order]
    if limit is not None:
        item_ids = item_ids[:limit]
    path = cache_file(dataset_dir, llm.model_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = load_cache(path)
    todo: list[ItemFacts] = []
    cached = 0
    for item_id in item_ids:
        facts = item_facts(catalogue, item_id, noun)  # ValueError on an unknown id
        hit = cache.get(item_id)
        if hit is not None and hit.content_sha == content_sha(facts, llm.model_name):
            cached += 1
            if on_item:
                on_item(None)
        else:
            todo.append(facts)
    lock = threading.Lock()
    done = failed = tokens = 0
    start = time.perf_counter()

    def run(facts: ItemFacts) -> None:
        nonlocal done, failed, tokens
        entry = enrich_one(llm, catalogue, facts)
        with lock, path.open("a", encoding="utf-8") as f:
            f.write(entry.model_dump_json() + "\n")
            done += 1
            failed += entry.description is None
            tokens += entry.tokens
        if on_item:
            on_item(entry)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(run, facts) for facts in todo]:
            future.result()  # re-raises an unreachable backend
    seconds = time.perf_counter() - start
    return EnrichReport(
        requested=len(item_ids), cached=cached, done=done, failed=failed, seconds=seconds,
        items_per_hour=done / seconds * 3600 if done and seconds > 0 else 0.0,
        tokens=tokens, cache=str(path),
    )  # fmt: skip


def activate(dataset_dir: Path, model: str) -> int:
    """Write ``<dataset_dir>/enrichment.parquet`` from the model's cache (passing entries).

    Returns:
        The number of items with an active enrichment.

    Raises:
        FileNotFoundError: nothing is cached for ``model``.
    """
    path = cache_file(dataset_dir, model)
    cache = load_cache(path)
    if not cache:
        raise FileNotFoundError(f"no enrichment cached for model {model!r} ({path}); "
                                "run `recpilot enrich` first")  # fmt: skip
    rows = [{"item_id": e.item_id, "description": e.description, "tags": json.dumps(e.tags)}
            for e in cache.values() if e.description]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["item_id", "description", "tags"])
    tmp = Path(dataset_dir) / (ENRICHMENT_FILE + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(Path(dataset_dir) / ENRICHMENT_FILE)
    return len(frame)


def deactivate(dataset_dir: Path) -> bool:
    """Remove the active enrichment (the cache stays). Returns whether one was active."""
    active = Path(dataset_dir) / ENRICHMENT_FILE
    if active.is_file():
        active.unlink()
        return True
    return False
