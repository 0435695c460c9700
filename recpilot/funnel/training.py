"""The ``train`` workflow: fit the coarse models of the active dataset and save them.

ALS is fitted on every interaction with the settings' hyper-parameters and saved under
``models_dir`` (``als.npz`` …) with the hybrid's parameters (``hybrid.json``);
:func:`recpilot.agent.services.build_services` loads them back through the scorer
registry. Choosing the hyper-parameters on validation items first (``recpilot train
--tune``) is an evaluation concern: :func:`recpilot.evals.tuning.tune_on_validation`.
"""

from __future__ import annotations

from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.funnel.scorers.als import CollaborativeModel
from recpilot.funnel.scorers.hybrid import HybridParams, save_params


def train_models(settings: Settings, hybrid: HybridParams | None = None) -> CollaborativeModel:
    """Fit ALS on the dataset of ``settings`` and save it with the hybrid's parameters.

    Args:
        settings: data directory, dataset and ``als_*`` hyper-parameters.
        hybrid: the hybrid's parameters to save (None: the defaults).

    Returns:
        The fitted ALS model.

    Raises:
        FileNotFoundError: the dataset is missing.
        ValueError: the dataset has no interactions.
    """
    catalogue = Catalogue.load(settings.dataset_dir)
    model = CollaborativeModel.train(
        catalogue.interactions,
        catalogue.index_of,
        catalogue.ids.size,
        factors=settings.als_factors,
        iterations=settings.als_iterations,
        regularization=settings.als_regularization,
        alpha=settings.als_alpha,
    )
    model.save(settings.models_dir)
    save_params(settings.models_dir, hybrid or HybridParams())
    return model
