"""Vector geometry every stage shares: normalising, centroids, nearest centroids and nearest
neighbours, and neighbour smoothing. Pure functions over numpy arrays."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def centroids_of(vectors: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    return {
        int(label): normalize(vectors[labels == label].mean(axis=0))
        for label in np.unique(labels[labels >= 0])
    }


def assign(
    vectors: np.ndarray,
    centroids: Mapping[int, np.ndarray],
    *,
    threshold: float | Mapping[int, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid by cosine for each vector: (labels, similarities), with -1 and nan
    below ``threshold``: one cosine for every centroid, or one per label (as
    ``Clustering.thresholds``). Ties go to the lowest label."""
    vectors = normalize(np.atleast_2d(vectors))
    n = len(vectors)
    if not centroids or n == 0:
        return np.full(n, -1, dtype=np.int64), np.full(n, np.nan, dtype=np.float32)
    keys = np.array(sorted(centroids), dtype=np.int64)
    scores = vectors @ normalize(np.stack([centroids[int(k)] for k in keys])).T
    best = scores.argmax(axis=1)  # the first maximum, i.e. the lowest label
    similarity = scores[np.arange(n), best]
    if isinstance(threshold, Mapping):
        needed = np.array([threshold[int(k)] for k in keys], dtype=np.float32)[best]
    else:
        needed = np.float32(threshold)
    ok = similarity >= needed
    return np.where(ok, keys[best], -1), np.where(ok, similarity, np.nan).astype(np.float32)


def nearest_neighbors(vectors: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` most cosine-similar rows of ``reference`` for each row of
    ``vectors``, unordered. Exact, in blocks to bound memory.

    The reference rows are taken in groups of 64; only the ``k`` groups with the highest
    maximum can hold one of the ``k`` best (each such group's maximum is at least the ``k``-th
    best score), so the ``k`` best are picked among their members. A partial sort of every
    row of scores took 80% of the time to cluster 100k units; the group maxima cost a tenth of
    that."""
    k = min(k, len(reference))
    group = 64
    n_groups = -(-len(reference) // group)
    if n_groups <= k:  # too few groups to gain anything
        group, n_groups = 1, len(reference)
    pad = n_groups * group - len(reference)
    members = np.arange(group)
    blocks = []
    for start in range(0, len(vectors), 1024):
        scores = vectors[start : start + 1024] @ reference.T
        if pad:
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        grouped = scores.reshape(len(scores), n_groups, group)
        top = np.argpartition(grouped.max(axis=2), n_groups - k, axis=1)[:, -k:]
        rows = np.arange(len(scores))[:, None, None]
        candidates = grouped[rows, top[:, :, None], members].reshape(len(scores), -1)
        columns = (top[:, :, None] * group + members).reshape(len(scores), -1)
        best = np.argpartition(candidates, candidates.shape[1] - k, axis=1)[:, -k:]
        blocks.append(np.take_along_axis(columns, best, axis=1))
    return np.concatenate(blocks) if blocks else np.empty((0, k), dtype=np.int64)


def smooth(vectors: np.ndarray, reference: np.ndarray, *, neighbors: int, steps: int) -> np.ndarray:
    """Average each vector with its ``neighbors`` nearest reference vectors (``reference``
    indexes ``vectors``; a reference vector is its own nearest), ``steps`` times."""
    if steps == 0 or len(reference) == 0:
        return vectors
    from scipy.sparse import csr_matrix

    nearest = nearest_neighbors(vectors, vectors[reference], neighbors)
    n, k = nearest.shape
    mean = csr_matrix(
        (np.full(n * k, 1.0 / k, dtype=np.float32), nearest.ravel(), np.arange(0, n * k + 1, k)),
        shape=(n, len(reference)),
    )
    for _ in range(steps):
        vectors = normalize(vectors + mean @ vectors[reference])
    return vectors
