"""Where a title candidate points in embedding space, without embedding it.

A clause is cut out of a statement, so it has no vector of its own, and the label stage has no
embedder. Each word stands for the mean vector of the statements (of every issue) that use it:
a word used in one issue's statements points at that issue, a word used everywhere points
nowhere in particular and, being a mean of many directions, weighs little. A clause points where
the sum of its words points. Its margin, the cosine to its own issue's centroid minus the cosine
to the nearest other one, says how well the clause tells its issue from the others, as a reader
comparing titles would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize

PRIOR_USES = 1.0


@dataclass(frozen=True)
class WordSpace:
    """The statements' words (columns of ``uses``) and the issues' centroids they are scored
    against."""

    columns: dict[str, int]  # word -> column of ``uses``
    uses: sparse.csc_matrix  # statement x word, 1 where the statement uses the word
    vectors: np.ndarray  # statement rows, L2-normalised
    centroids: np.ndarray  # issue rows, L2-normalised

    @classmethod
    def build(
        cls,
        counts: sparse.spmatrix,
        terms: Sequence[str],
        vectors: np.ndarray,
        centroids: np.ndarray,
    ) -> WordSpace:
        """From a statement x term count matrix (c-TF-IDF's); phrases of several words are left
        out, since a clause's words are looked up one by one."""
        single = [i for i, term in enumerate(terms) if " " not in term]
        uses = sparse.csc_matrix(counts)[:, single]
        uses.data[:] = 1.0
        return cls({terms[i]: n for n, i in enumerate(single)}, uses, vectors, centroids)

    def margins(self, clauses: Sequence[Iterable[str]], issues: Sequence[int]) -> np.ndarray:
        """For each clause (its words) of issue ``issues[i]`` (a row of ``centroids``): the
        cosine of where it points to its issue's centroid minus that to the nearest other one; 0
        for a clause of no known word, or when there is no other issue."""
        found = [sorted({self.columns[w] for w in words if w in self.columns}) for words in clauses]
        needed = sorted({c for columns in found for c in columns})
        if not needed or len(self.centroids) < 2:
            return np.zeros(len(found))
        picked = self.uses[:, needed]
        # Each word: the mean of the statements that use it, shrunk towards nothing by
        # ``PRIOR_USES`` statements, so a word used once weighs less than one used by many.
        uses = np.asarray(picked.sum(axis=0)).reshape(-1, 1)
        means = (picked.T @ self.vectors) / (uses + PRIOR_USES)
        position = {column: i for i, column in enumerate(needed)}
        pointing = np.zeros((len(found), self.vectors.shape[1]), dtype=np.float64)
        for row, columns in enumerate(found):
            if columns:
                pointing[row] = means[[position[c] for c in columns]].sum(axis=0)
        similarity = normalize(pointing) @ self.centroids.T
        rows = np.arange(len(found))
        own = similarity[rows, issues].copy()
        similarity[rows, issues] = -np.inf
        margin = own - similarity.max(axis=1)
        margin[[not columns for columns in found]] = 0.0
        return margin
