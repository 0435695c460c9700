"""What the controller's nodes call, built once per process and passed as runtime context.

``Services`` bundles the catalogue, the Chroma index and encoder, the two scorer slots
(the recall model and the coarse model), the recall stage and the LLM client. LangGraph
hands it to every node as ``runtime.context`` (LangGraph ≥ 0.6 ``context_schema``); when
the graph is run by standard LangGraph tooling without a context, nodes load the default
services from settings (:func:`default_services`).

:func:`build_services` is the one place they are wired: the runner, ``recpilot eval``
and ``recpilot eval-cold-start`` all call it, passing what they built themselves (a
catalogue over a training split, models trained on it) and letting it load the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from recpilot.agent.context import TurnCache
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.data.embeddings import Encoder, make_encoder
from recpilot.data.item_index import ItemIndex
from recpilot.funnel.recall import Recall
from recpilot.funnel.scorers.registry import Scorer, load_scorer
from recpilot.funnel.training import training_data
from recpilot.llm.client import LLMClient
from recpilot.llm.server import resolve_llm


@dataclass
class Services:
    """Everything a request needs. ``llm`` is None when the LLM is switched off.

    Attributes:
        recall_model: the scorer behind the collaborative recall channel.
        coarse_model: the scorer of coarse ranking (often the same object).
        item_vectors: all item-text embeddings, shape (n_items, dim), rows aligned with
            ``catalogue.ids`` (read once from Chroma, used for query–item similarity
            in coarse ranking).
        turns: per-turn contexts of the runs in flight (see ``agent.context``).
    """

    settings: Settings
    catalogue: Catalogue
    index: ItemIndex
    encoder: Encoder
    recall_model: Scorer
    coarse_model: Scorer
    recall: Recall
    item_vectors: np.ndarray
    llm: LLMClient | None
    turns: TurnCache = field(default_factory=TurnCache, repr=False, compare=False)


def build_services(
    settings: Settings,
    llm: LLMClient | None,
    *,
    catalogue: Catalogue | None = None,
    index: ItemIndex | None = None,
    encoder: Encoder | None = None,
    item_vectors: np.ndarray | None = None,
    coarse_model: Scorer | None = None,
    recall_model: Scorer | None = None,
) -> Services:
    """Wire the services of ``settings.dataset``; anything passed in is used as is.

    Without models, the coarse scorer ``settings.coarse_model`` saved by ``recpilot
    train`` is loaded through the scorer registry (``load_scorer``); the recall model
    is ``settings.recall_model`` loaded the same way, or the coarse model itself when
    that setting is unset.

    Args:
        settings: which data directory and dataset, budgets, model kinds.
        llm: the client for LLM stages, or None to run without an LLM.
        catalogue: the catalogue (evaluations pass one over a training split).
        index, encoder, item_vectors: the item index, text encoder and all item vectors
            (shape (n_items, dim), rows in ``catalogue.ids`` order).
        coarse_model: the coarse scorer (evaluations pass models trained on the split).
        recall_model: the recall scorer; None = ``coarse_model`` when one was passed,
            else as described above.

    Returns:
        The :class:`Services`.

    Raises:
        FileNotFoundError: the dataset, index or model is missing; the message names
            the command that creates it (``recpilot data fetch``, ``index``, ``train``).
        ValueError: ``hybrid.json`` is unreadable.
    """
    catalogue = catalogue if catalogue is not None else Catalogue.load(settings.dataset_dir)
    if index is None:
        index = ItemIndex.open(settings)
        if not index.is_built():
            raise FileNotFoundError(
                f"no Chroma index for dataset {settings.dataset!r}; run `recpilot index` first"
            )
        ids = [str(i) for i in catalogue.ids]
        if not index.matches(ids, [catalogue.item_text(p) for p in range(len(ids))]):
            raise FileNotFoundError(
                f"the Chroma index of {settings.dataset!r} was built from other item text "
                "(e.g. before `recpilot data add-text`); run `recpilot index` again"
            )
    encoder = encoder if encoder is not None else make_encoder(settings)
    if coarse_model is None:
        data = training_data(catalogue)
        coarse_model = load_scorer(settings.coarse_model, settings.models_dir, data)
        if recall_model is None and settings.recall_model not in (None, settings.coarse_model):
            recall_model = load_scorer(settings.recall_model, settings.models_dir, data)
    recall_model = recall_model if recall_model is not None else coarse_model
    if item_vectors is None:
        item_vectors = index.vectors([str(i) for i in catalogue.ids])
    recall = Recall(catalogue, index, encoder, recall_model)
    return Services(
        settings=settings,
        catalogue=catalogue,
        index=index,
        encoder=encoder,
        recall_model=recall_model,
        coarse_model=coarse_model,
        recall=recall,
        item_vectors=item_vectors,
        llm=llm,
    )


@contextlib.contextmanager
def open_llm(settings: Settings, base_url: str | None = None) -> Iterator[LLMClient]:
    """The one LLM client setup: an already running endpoint, or the embedded server.

    Args:
        settings: LLM settings (``llm_base_url``, key, model, timeouts, json mode).
        base_url: an OpenAI-compatible server that is already running (tests, evals);
            None uses ``settings.llm_base_url`` (checked with one 1-token call,
            ``LLMClient.connect``), or starts the embedded server for the duration of the
            ``with`` block.

    Raises:
        recpilot.llm.server.LLMSetupError: the embedded LLM cannot start.
        recpilot.llm.client.LLMConfigError: the configured endpoint refuses the key or
            does not know the model.
    """
    if base_url:
        yield LLMClient.from_settings(settings, base_url, embedded=settings.llm_base_url is None)
        return
    with resolve_llm(settings) as url:
        yield LLMClient.connect(settings, url)


@lru_cache(maxsize=1)
def default_services() -> Services:
    """Services from the environment's settings, LLM at ``RECPILOT_LLM_BASE_URL``.

    Used when the graph runs without a context (e.g. under ``langgraph dev``); the LLM
    is used only if a base URL is configured, since nothing here starts a server.
    """
    settings = Settings()
    llm = None
    if settings.llm_base_url:
        llm = LLMClient.from_settings(settings, settings.llm_base_url)
    return build_services(settings, llm)
