"""``Meaning``: where a title candidate's own embedding points, its issue or another one.

A candidate is a clause cut from a statement, so its statement's place says little about it
("For a payments company that's a compliance incident" sits in the middle of an issue about
dropped negations but names none). Embedding the clause itself and comparing it with every
issue's centroid asks the question a reader of the list asks: does this title tell its issue
apart from the others? A clause that is its whole statement keeps that statement's vector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Meaning:
    """``embed`` (texts -> L2-normalised rows) in the space of the units' ``vectors``, and
    the issues' normalised ``centroids`` in that space, one row per issue."""

    embed: Callable[[list[str]], np.ndarray]
    vectors: np.ndarray
    centroids: np.ndarray

    def margins(
        self, texts: Sequence[str], units: Sequence[int | None], positions: Sequence[int]
    ) -> np.ndarray:
        """Per text: its cosine to the centroid in row ``positions[i]`` minus its cosine to
        the nearest other centroid (the cosine itself when there is one issue). ``units[i]``
        is the unit whose vector the text has (the clause is the whole statement), or None
        to embed it."""
        rows = np.empty((len(texts), self.vectors.shape[1]), dtype=np.float32)
        todo = [i for i, unit in enumerate(units) if unit is None]
        for i, unit in enumerate(units):
            if unit is not None:
                rows[i] = self.vectors[unit]
        if todo:
            rows[todo] = self.embed([texts[i] for i in todo])
        similarity = rows @ self.centroids.T
        index = np.arange(len(texts))
        own = similarity[index, list(positions)]
        if self.centroids.shape[0] < 2:
            return own
        similarity[index, list(positions)] = -np.inf
        return own - similarity.max(axis=1)
