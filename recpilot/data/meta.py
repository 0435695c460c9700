"""A dataset's ``meta.json``: provenance, counts, checksum, and what counts as "liked".

"Liked" is defined here once per dataset (:class:`LikedRule`) and read everywhere a
liked item matters — i2i seeds, the user's liked categories, the cold-start
evaluation's named items:

- explicit ratings (more than one distinct value): a rating in the top quarter of the
  dataset's rating scale, ``rating >= max - (max - min) / 4`` — 4.0 on MovieLens 1–5
  stars; 3.875 on ml-latest-small's 0.5–5 (the same half-star ratings as 4.0);
- implicit feedback (one value everywhere, e.g. ingest's default 1.0): any interaction;
- implicit counts (``kind="top_share"``, set by hand in ``meta.json``): the top ``share``
  of each user's interactions by count.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

SCALE_TOP_SHARE = 0.25  # explicit ratings: the top quarter of the scale is "liked"


class LikedRule(BaseModel):
    """When an interaction counts as liked (see the module docstring).

    Attributes:
        kind: ``min_rating`` (explicit ratings), ``any`` (implicit), or ``top_share``
            (implicit counts in ``rating``).
        min_rating: ``min_rating`` only — the smallest liked rating.
        share: ``top_share`` only — the share (0–1] of a user's interactions, highest
            counts first, that are liked (at least one per user).
    """

    kind: Literal["min_rating", "any", "top_share"] = "any"
    min_rating: float | None = None
    share: float | None = Field(default=None, gt=0, le=1)

    @classmethod
    def from_ratings(cls, ratings: np.ndarray | pd.Series) -> LikedRule:
        """The rule for a dataset with these ratings: explicit if they vary, else implicit."""
        values = np.asarray(ratings, dtype=np.float64)
        if values.size == 0 or float(values.min()) == float(values.max()):
            return cls(kind="any")
        lo, hi = float(values.min()), float(values.max())
        return cls(kind="min_rating", min_rating=hi - SCALE_TOP_SHARE * (hi - lo))

    @classmethod
    def parse(cls, text: str) -> LikedRule:
        """``any``, ``min-rating:X`` or ``top-share:S`` (the CLI's ``--liked``).

        Raises:
            ValueError: another form, a bad number, or a share outside (0, 1].
        """
        kind, _, value = text.strip().lower().partition(":")
        try:
            if kind == "any" and not value:
                return cls(kind="any")
            if kind == "min-rating":
                return cls(kind="min_rating", min_rating=float(value))
            if kind == "top-share":
                return cls(kind="top_share", share=float(value))
        except ValueError:
            pass  # a bad number or share: the usage below
        raise ValueError(
            f"--liked {text!r}: use any, min-rating:<rating> (e.g. min-rating:4) or "
            "top-share:<0-1> (e.g. top-share:0.5 for play counts)"
        )

    def mask(self, interactions: pd.DataFrame) -> np.ndarray:
        """Bool per row of ``interactions`` (``user_id``, ``rating``): is it liked?"""
        n = len(interactions)
        if self.kind == "any" or "rating" not in interactions or n == 0:
            return np.ones(n, dtype=bool)
        ratings = interactions["rating"].to_numpy(dtype=np.float64)
        if self.kind == "min_rating":
            assert self.min_rating is not None
            return ratings >= self.min_rating
        share = self.share or 1.0
        rank = interactions.groupby("user_id")["rating"].rank(method="first", ascending=False)
        size = interactions.groupby("user_id")["rating"].transform("size")
        keep = np.maximum(1, np.ceil(size.to_numpy() * share))
        return rank.to_numpy() <= keep

    def liked_ids(self, interactions: pd.DataFrame) -> list[str]:
        """Item ids of the liked rows, in row order."""
        return [str(i) for i in interactions["item_id"].to_numpy()[self.mask(interactions)]]


class DatasetMeta(BaseModel):
    """Contents of a canonical dataset's ``meta.json``.

    Attributes:
        name: dataset name, e.g. ``movielens-100k``.
        source: where the data came from (a path, URL or package).
        created_at: when the dataset was written (timezone-aware, UTC).
        n_items, n_users, n_interactions: row counts of the canonical files.
        interactions_sha256: hex sha256 of the canonical interactions content
            (see :func:`~recpilot.data.ingest.interactions_sha256`).
        liked: what counts as liked; None (datasets ingested before it existed) means
            :meth:`LikedRule.from_ratings` of the interactions.
        item_noun: what one item is called in prompts and replies (``movie``, ``song``;
            ``item`` when the ingest was not told).
        item_text_source: the file the items' text was joined from, if any.
        n_items_with_text: items with a non-empty text.
    """

    name: str
    source: str
    created_at: datetime
    n_items: int
    n_users: int
    n_interactions: int
    interactions_sha256: str
    liked: LikedRule | None = None
    item_noun: str = "item"
    item_text_source: str | None = None
    n_items_with_text: int | None = None


def read_meta(dataset_dir: Path) -> DatasetMeta:
    """Read ``dataset_dir/meta.json``.

    Raises:
        FileNotFoundError: the folder holds no ``meta.json``.
        pydantic.ValidationError: the file is not a valid :class:`DatasetMeta`.
    """
    path = Path(dataset_dir) / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {dataset_dir} is not an ingested dataset")
    return DatasetMeta.model_validate_json(path.read_text(encoding="utf-8"))
