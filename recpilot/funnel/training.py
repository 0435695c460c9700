"""The ``train`` workflow: fit the scorers the settings select and save them.

Each selected kind (``settings.coarse_model`` and, when set, ``settings.recall_model``)
is fitted through the scorer registry on every interaction of the active dataset and
saved under ``models_dir``; a ``trained.json`` record names what was fitted on how much
data. :func:`recpilot.agent.services.build_services` loads them back through the same
registry. Choosing the hyper-parameters on validation items first (``recpilot train
--tune``) is an evaluation concern: :func:`recpilot.evals.tuning.tune_on_validation`.
"""

from __future__ import annotations

import json
import os
import time

from pydantic import BaseModel

from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.funnel.scorers.registry import Scorer, TrainingData, fit_scorer, get_scorer

RECORD_FILE = "trained.json"


def selected_kinds(settings: Settings) -> list[str]:
    """The scorer kinds the services will load: coarse first, then recall if different.

    Raises:
        ValueError: a kind is not registered (the message lists the known ones).
    """
    kinds = list(dict.fromkeys([settings.coarse_model, settings.recall_model or ""]))
    kinds = [k for k in kinds if k]
    for kind in kinds:
        get_scorer(kind)
    return kinds


def training_data(catalogue: Catalogue) -> TrainingData:
    """The :class:`TrainingData` of a whole catalogue (every interaction)."""
    return TrainingData(catalogue.interactions, catalogue.index_of, int(catalogue.ids.size))


def train_models(
    settings: Settings, params: dict[str, BaseModel] | None = None
) -> dict[str, Scorer]:
    """Fit and save every selected scorer kind on the dataset of ``settings``.

    Args:
        settings: data directory, dataset, ``coarse_model``/``recall_model`` and the
            ``als_*`` hyper-parameters.
        params: kind-specific parameters by kind name (e.g. ``{"hybrid": HybridParams}``
            from ``recpilot train --tune``); kinds not named use their defaults.

    Returns:
        ``{kind: fitted scorer}`` in :func:`selected_kinds` order.

    Raises:
        FileNotFoundError: the dataset is missing.
        ValueError: unknown kind, or the dataset has no interactions.
    """
    kinds = selected_kinds(settings)
    catalogue = Catalogue.load(settings.dataset_dir)
    data = training_data(catalogue)
    params = params or {}
    fitted: dict[str, Scorer] = {}
    for kind in kinds:
        started = time.perf_counter()
        fitted[kind] = fit_scorer(kind, data, settings, params.get(kind))
        fitted[kind].save(settings.models_dir)
        seconds = round(time.perf_counter() - started, 2)
        _write_record(settings, kind, data, seconds)
    return fitted


def is_trained(settings: Settings) -> bool:
    """True when every selected kind was saved by :func:`train_models` for this dataset."""
    path = settings.models_dir / RECORD_FILE
    if not path.exists():
        return False
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return False
    return all(kind in record.get("kinds", {}) for kind in selected_kinds(settings))


def _write_record(settings: Settings, kind: str, data: TrainingData, seconds: float) -> None:
    """Add ``kind`` to ``models_dir/trained.json`` (atomic replace)."""
    path = settings.models_dir / RECORD_FILE
    record: dict = {"dataset": settings.dataset, "kinds": {}}
    if path.exists():
        try:
            record = json.loads(path.read_text())
        except ValueError:
            pass  # an unreadable record is rewritten
    record.setdefault("kinds", {})[kind] = {
        "users": int(data.interactions["user_id"].nunique()),
        "items": data.n_items,
        "interactions": len(data.interactions),
        "fit_seconds": seconds,
        "trained_at": int(time.time()),
    }
    tmp = path.with_name(f".{RECORD_FILE}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)
