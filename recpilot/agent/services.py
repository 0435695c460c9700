"""What the controller's nodes call, loaded once per process and passed as runtime context.

``Services`` bundles the catalogue, the Chroma index and encoder, the ALS model, the
recall stage and the LLM client. LangGraph hands it to every node as
``runtime.context`` (LangGraph ≥ 0.6 ``context_schema``); when the graph is run by
standard LangGraph tooling without a context, nodes load the default services from
settings (:func:`default_services`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.data.embeddings import Encoder, make_encoder
from recpilot.data.item_index import ItemIndex
from recpilot.funnel.recall import Recall
from recpilot.funnel.scorers.als import CollaborativeModel
from recpilot.funnel.scorers.hybrid import coarse_model, load_params
from recpilot.llm.client import LLMClient


@dataclass
class Services:
    """Everything a request needs. ``llm`` is None when the LLM is switched off.

    Attributes:
        item_vectors: all item-text embeddings, shape (n_items, dim), rows aligned with
            ``catalogue.ids`` (read once from Chroma, used for query–item similarity
            in coarse ranking).
    """

    settings: Settings
    catalogue: Catalogue
    index: ItemIndex
    encoder: Encoder
    collaborative: CollaborativeModel
    recall: Recall
    item_vectors: np.ndarray
    llm: LLMClient | None


def load_services(settings: Settings, llm: LLMClient | None) -> Services:
    """Load the catalogue, index, encoder and coarse model of ``settings.dataset``.

    The coarse model is ``settings.coarse_model``: the hybrid (ALS + co-visitation +
    recent popularity, parameters from ``models_dir/hybrid.json``) or ALS alone.

    Args:
        settings: which data directory and dataset.
        llm: the client for LLM stages, or None to run without an LLM.

    Raises:
        FileNotFoundError: the dataset, index or model is missing; the message names
            the command that creates it (``recpilot data fetch``, ``index``, ``train``).
        ValueError: ``hybrid.json`` is unreadable.
    """
    catalogue = Catalogue.load(settings.dataset_dir)
    index = ItemIndex.open(settings)
    if not index.is_built():
        raise FileNotFoundError(
            f"no Chroma index for dataset {settings.dataset!r}; run `recpilot index` first"
        )
    encoder = make_encoder(settings)
    als = CollaborativeModel.load(settings.models_dir)
    if als.item_factors.shape[0] != catalogue.ids.size:
        raise FileNotFoundError(
            "the trained model does not match the catalogue; run `recpilot train` again"
        )
    collaborative = coarse_model(
        als,
        catalogue.interactions,
        catalogue.index_of,
        settings.coarse_model,
        load_params(settings.models_dir),
    )
    item_vectors = index.vectors([str(i) for i in catalogue.ids])
    recall = Recall(catalogue, index, encoder, collaborative)
    return Services(settings, catalogue, index, encoder, collaborative, recall, item_vectors, llm)


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
    return load_services(settings, llm)
