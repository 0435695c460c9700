"""The scorer contract: every kind fits, saves, loads and scores alike; a new kind is one
registration that ``recpilot train`` fits and the services load."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from recpilot.agent.graph import build_graph, turn_input
from recpilot.agent.services import build_services
from recpilot.agent.state import Code
from recpilot.cli.main import app
from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.funnel.scorers.als import ModelNotTrainedError
from recpilot.funnel.scorers.registry import (
    ScorerKind,
    TrainingData,
    fit_scorer,
    load_scorer,
    register_scorer,
    scorer_names,
    unregister_scorer,
)
from recpilot.funnel.training import RECORD_FILE, is_trained, train_models, training_data


@pytest.fixture
def home_copy(tiny_settings, tmp_path) -> Settings:
    """A private copy of the tiny home (dataset, Chroma index, models) to train into."""
    shutil.copytree(tiny_settings.home, tmp_path / "home")
    return tiny_settings.model_copy(update={"home": tmp_path / "home"})


class PopularityScorer:
    """A kind defined only here: each item's training count, the same for every user."""

    def __init__(self, counts: np.ndarray, users: set[str]) -> None:
        self.counts, self.users = counts, users

    def knows(self, user_id):
        return user_id in self.users

    def user_vector(self, user_id=None, liked_positions=()):
        return self.counts if (self.knows(user_id) or list(liked_positions)) else None

    def scores(self, user_vec, positions):
        return user_vec[positions]

    def score_all(self, user_vec):
        return user_vec

    def top_n(self, user_vec, n, allowed=None):
        scores = np.where(allowed, user_vec, -np.inf) if allowed is not None else user_vec
        order = np.argsort(-scores, kind="stable")[:n]
        return [(int(p), float(scores[p])) for p in order if np.isfinite(scores[p])]

    def save(self, directory):
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"counts": self.counts.tolist(), "users": sorted(self.users)}
        (directory / "counts.json").write_text(json.dumps(payload))


def fit_counts(data: TrainingData, settings, params=None):
    pos = data.interactions["item_id"].map(data.index_of).to_numpy()
    counts = np.bincount(pos, minlength=data.n_items).astype(float)
    return PopularityScorer(counts, set(data.interactions["user_id"]))


def load_counts(directory, data):
    path = directory / "counts.json"
    if not path.exists():
        raise ModelNotTrainedError(f"no {path}; run `recpilot train`")
    saved = json.loads(path.read_text())
    return PopularityScorer(np.array(saved["counts"]), set(saved["users"]))


@pytest.fixture
def counts_kind():
    register_scorer(ScorerKind("counts", "training counts", fit_counts, load_counts))
    yield
    unregister_scorer("counts")


def test_every_registered_kind_fits_saves_loads_and_scores_alike(home_copy, tmp_path):
    catalogue = Catalogue.load(home_copy.dataset_dir)
    data = training_data(catalogue)
    for kind in scorer_names():
        fitted = fit_scorer(kind, data, home_copy)
        fitted.save(tmp_path / kind)
        loaded = load_scorer(kind, tmp_path / kind, data)
        assert loaded.knows("u1") and not loaded.knows("stranger")
        for model in (fitted, loaded):
            for state in (model.user_vector("u1"), model.user_vector(None, [0, 1, 2])):
                every = np.asarray(model.score_all(state))
                positions = np.array([3, 0, 7])
                assert every.shape == (len(catalogue),), kind
                np.testing.assert_allclose(model.scores(state, positions), every[positions],
                                           rtol=1e-5, atol=1e-6)  # fmt: skip
                top = model.top_n(state, 4)
                assert [p for p, _ in top] == list(np.argsort(-every, kind="stable")[:4])
            assert model.user_vector(None, []) is None
        np.testing.assert_allclose(  # the saved model is the fitted one
            loaded.score_all(loaded.user_vector("u1")),
            fitted.score_all(fitted.user_vector("u1")),
            rtol=1e-5,
            atol=1e-6,
        )


def test_a_registered_kind_is_trained_loaded_and_used_in_coarse_ranking(home_copy, counts_kind):
    settings = home_copy.model_copy(update={"coarse_model": "counts"})
    assert not is_trained(settings)
    fitted = train_models(settings)
    assert list(fitted) == ["counts"] and is_trained(settings)
    record = json.loads((settings.models_dir / RECORD_FILE).read_text())
    assert record["kinds"]["counts"]["interactions"] == len(
        Catalogue.load(settings.dataset_dir).interactions
    )
    services = build_services(settings, None)
    assert isinstance(services.coarse_model, PopularityScorer)
    assert services.recall_model is services.coarse_model
    state = build_graph().invoke(turn_input("u1", k=3, fine_mode="off"), context=services)
    counts = services.coarse_model.counts
    ranked = [services.catalogue.index_of[i.item_id] for i in state["items"]]
    coarse = next(s for s in state["stages"] if s["stage"] == "coarse")
    assert len(ranked) == 3 and Code.SCORED_BY_MODEL in coarse["codes"]
    assert list(counts[ranked]) == sorted(counts[ranked], reverse=True)  # ranked by the kind


def test_a_missing_or_mismatched_model_names_the_fix(home_copy, counts_kind):
    settings = home_copy.model_copy(update={"coarse_model": "counts"})
    with pytest.raises(FileNotFoundError, match="recpilot train"):
        build_services(settings, None)
    small = TrainingData(Catalogue.load(home_copy.dataset_dir).interactions.iloc[:0], {}, 3)
    with pytest.raises(FileNotFoundError, match="run `recpilot train` again"):
        load_scorer("als", home_copy.models_dir, small)


def test_an_unknown_kind_is_refused_with_the_known_ones(home_copy, monkeypatch):
    with pytest.raises(ValueError, match="unknown scorer 'nope'; known: hybrid, als"):
        build_services(home_copy.model_copy(update={"coarse_model": "nope"}), None)
    monkeypatch.setenv("RECPILOT_HOME", str(home_copy.home))
    monkeypatch.setenv("RECPILOT_DATASET", "tiny")
    monkeypatch.setenv("RECPILOT_COARSE_MODEL", "nope")
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 2
    assert "unknown scorer 'nope'" in result.output and "Traceback" not in result.output


def test_services_refuse_an_index_built_from_other_item_text(home_copy, tmp_path):
    from recpilot.data.ingest import add_item_text
    from recpilot.data.item_index import build_index, index_is_current

    assert index_is_current(home_copy)
    text = tmp_path / "text.csv"
    text.write_text("item_id,text\n1,A toy cowboy and a space ranger become friends.\n")
    add_item_text(home_copy.dataset_dir, text)
    assert not index_is_current(home_copy)
    with pytest.raises(FileNotFoundError, match="other item text.*run `recpilot index` again"):
        build_services(home_copy, None)
    build_index(home_copy)
    assert index_is_current(home_copy) and build_services(home_copy, None).catalogue.get(
        "1"
    ).text.startswith("A toy cowboy")
