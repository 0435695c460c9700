"""A tiny real dataset (ingested, indexed in Chroma with MiniLM, ALS-trained) for unit tests."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recpilot.config.settings import Settings
from recpilot.data.catalogue import Catalogue
from recpilot.data.embeddings import make_encoder
from recpilot.data.ingest import ingest
from recpilot.data.item_index import ItemIndex
from recpilot.funnel.scorers.als import CollaborativeModel

MOVIES = [
    ("1", "Toy Story (1995)", "Animation|Children's|Comedy"),
    ("2", "Aladdin (1992)", "Animation|Children's|Musical"),
    ("3", "The Lion King (1994)", "Animation|Children's|Musical"),
    ("4", "Scream (1996)", "Horror|Thriller"),
    ("5", "The Shining (1980)", "Horror"),
    ("6", "Alien (1979)", "Horror|Sci-Fi"),
    ("7", "Star Wars (1977)", "Action|Adventure|Sci-Fi"),
    ("8", "The Matrix (1999)", "Action|Sci-Fi"),
    ("9", "Groundhog Day (1993)", "Comedy|Romance"),
    ("10", "Clueless (1995)", "Comedy|Romance"),
    ("11", "Fargo (1996)", "Crime|Drama|Thriller"),
    ("12", "Pulp Fiction (1994)", "Crime|Drama"),
    ("13", "Casablanca (1942)", "Drama|Romance|War"),
    ("14", "Jumanji (1995)", "Adventure|Children's|Fantasy"),
    ("15", "Babe (1995)", "Children's|Comedy|Drama"),
    ("16", "Heat (1995)", "Action|Crime|Thriller"),
    ("17", "Braveheart (1995)", "Action|Drama|War"),
    ("18", "Forrest Gump (1994)", "Comedy|Romance|War"),
    ("19", "Mrs. Doubtfire (1993)", "Comedy"),
    ("20", "The Fugitive (1993)", "Action|Thriller"),
]
# user → liked items: two taste groups (family/comedy vs. crime/action/horror)
RATINGS = {
    "u1": ["1", "2", "3", "14", "15", "19"],
    "u2": ["1", "2", "9", "10", "15", "18"],
    "u3": ["2", "3", "14", "19", "9"],
    "u4": ["1", "3", "15", "10", "18", "19"],
    "u5": ["11", "12", "16", "20", "4"],
    "u6": ["7", "8", "16", "20", "6"],
    "u7": ["11", "12", "4", "5", "6"],
    "u8": ["7", "8", "17", "16", "12"],
    "u9": ["1", "14", "2"],
    "u10": ["4", "5", "11"],
}


def write_tiny_files(folder: Path) -> tuple[Path, Path]:
    """Write the tiny items/interactions CSVs; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    items, inter = folder / "items.csv", folder / "interactions.csv"
    with items.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "title", "categories"])
        w.writerows(MOVIES)
    with inter.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "rating", "timestamp"])
        t = 1_000_000
        for user, liked in RATINGS.items():
            for item in liked:
                t += 60
                w.writerow([user, item, 5, t])
    return items, inter


@pytest.fixture(scope="session")
def tiny_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a home holding the tiny dataset, its Chroma index and ALS model."""
    home = tmp_path_factory.mktemp("tiny-home")
    settings = Settings(home=home, dataset="tiny", planner="llm", _env_file=None)
    items, inter = write_tiny_files(home / "src")
    ingest(items, inter, settings.dataset_dir, "tiny")
    catalogue = Catalogue.load(settings.dataset_dir)
    ItemIndex.open(settings).build(
        [str(i) for i in catalogue.ids],
        [catalogue.item_text(p) for p in range(len(catalogue))],
        make_encoder(settings),
    )
    CollaborativeModel.train(
        catalogue.interactions, catalogue.index_of, len(catalogue), factors=8, iterations=10
    ).save(settings.models_dir)
    return settings
