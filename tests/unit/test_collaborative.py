import numpy as np
import pytest

from recpilot.data.catalogue import Catalogue
from recpilot.funnel.scorers.als import CollaborativeModel, ModelNotTrainedError


@pytest.fixture(scope="module")
def catalogue(tiny_settings):
    return Catalogue.load(tiny_settings.dataset_dir)


def test_save_load_round_trip(tiny_settings, catalogue, tmp_path):
    model = CollaborativeModel.load(tiny_settings.models_dir)
    model.save(tmp_path / "m")
    again = CollaborativeModel.load(tmp_path / "m")
    assert again.user_ids == model.user_ids
    np.testing.assert_allclose(again.item_factors, model.item_factors)


def test_missing_model_names_the_command(tmp_path):
    with pytest.raises(ModelNotTrainedError, match="recpilot train"):
        CollaborativeModel.load(tmp_path)


def test_top_n_respects_mask_and_order(tiny_settings, catalogue):
    model = CollaborativeModel.load(tiny_settings.models_dir)
    vec = model.user_vector("u1")
    allowed = np.ones(len(catalogue), dtype=bool)
    allowed[catalogue.index_of["1"]] = False
    top = model.top_n(vec, 5, allowed)
    assert len(top) == 5
    assert catalogue.index_of["1"] not in [p for p, _ in top]
    scores = [s for _, s in top]
    assert scores == sorted(scores, reverse=True)


def test_cold_user_vector_from_named_items(tiny_settings, catalogue):
    model = CollaborativeModel.load(tiny_settings.models_dir)
    assert model.user_vector("nobody") is None
    vec = model.user_vector("nobody", [catalogue.index_of["1"], catalogue.index_of["2"]])
    top = [str(catalogue.ids[p]) for p, _ in model.top_n(vec, 6)]
    family = {"1", "2", "3", "14", "15", "19", "9", "10", "18"}
    assert len(family.intersection(top)) >= 4


def test_train_rejects_unknown_items(catalogue):
    bad = catalogue.interactions.head(3).copy()
    bad.loc[bad.index[0], "item_id"] = "nope"
    with pytest.raises(ValueError, match="not in the catalogue"):
        CollaborativeModel.train(bad, catalogue.index_of, len(catalogue))
