"""The clustering's steps after HDBSCAN and its result: merging close groups, refinement,
the calibrated attachment thresholds, and the ``Clustering`` that ``Clusterer.fit`` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from triage.cluster.vectors import assign, centroids_of

# The robust spread: 1.4826 x the median absolute deviation is one standard deviation for
# normally distributed values, and a few far outliers cannot inflate it.
MAD_TO_SPREAD = 1.4826


@dataclass
class Clustering:
    labels: np.ndarray  # int, one per unit; -1 = unassigned
    centroids: dict[int, np.ndarray]  # label -> normalised mean of its members
    similarity: np.ndarray  # cosine of each unit to its centroid; nan when unassigned
    method: np.ndarray  # "cluster" (found by HDBSCAN), "assigned" (attached after) or ""
    # label -> the cosine a new unit needs to join it, calibrated on its members (every member
    # has it when clustered on words alone; see ``in_wording_space``)
    thresholds: dict[int, float] = field(default_factory=dict)

    @property
    def clusters(self) -> dict[int, np.ndarray]:
        """label -> indices of its units."""
        return {label: np.flatnonzero(self.labels == label) for label in self.centroids}

    @property
    def unassigned_share(self) -> float:
        return float(np.mean(self.labels < 0)) if len(self.labels) else 0.0


def merge_close_clusters(
    vectors: np.ndarray, labels: np.ndarray, *, min_similarity: float
) -> np.ndarray:
    """Join clusters whose centroids have cosine >= min_similarity (average linkage)."""
    centroids = centroids_of(vectors, labels)
    if len(centroids) < 2:
        return labels
    from sklearn.cluster import AgglomerativeClustering

    keys = sorted(centroids)
    groups = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=1.0 - min_similarity,
    ).fit_predict(np.stack([centroids[k] for k in keys]))
    mapping = np.full(max(keys) + 1, -1, dtype=np.int64)
    mapping[keys] = groups
    return np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)


def refine(vectors: np.ndarray, labels: np.ndarray, *, steps: int, min_size: int) -> np.ndarray:
    """Every vector to its nearest centroid, centroids recomputed: ``steps`` rounds at most
    (at least one), fewer once nothing moves. After each round a group smaller than
    ``min_size`` gives its vectors to the others; -1 everywhere when no group is left."""
    centroids = centroids_of(vectors, labels)
    for _ in range(max(steps, 1)):
        previous = labels
        labels, _ = assign(vectors, centroids, threshold=-1.0)
        present, sizes = np.unique(labels[labels >= 0], return_counts=True)
        small = set(present[sizes < min_size].tolist())
        if small:
            kept = {label: centroids[label] for label in centroids if label not in small}
            labels, _ = assign(vectors, kept, threshold=-1.0)
        if np.array_equal(labels, previous):
            break
        centroids = centroids_of(vectors, labels)
    return labels


def calibrated_thresholds(
    similarity: np.ndarray, labels: np.ndarray, *, deviations: float, max_share: float
) -> dict[int, float]:
    """label -> its members' median ``similarity`` minus ``deviations`` robust spreads.

    An issue's spread is never taken narrower than the median issue's: a group of
    near-duplicates would otherwise refuse every paraphrase. When more than ``max_share`` of
    all members would fall below their issue's threshold, the number of spreads grows until
    only that share does."""
    keys = np.unique(labels[labels >= 0])
    if not len(keys):
        return {}
    members = labels >= 0
    index = np.searchsorted(keys, labels[members])
    values = similarity[members]
    medians = np.array([np.median(values[index == i]) for i in range(len(keys))])
    deviation = np.abs(values - medians[index])
    spreads = MAD_TO_SPREAD * np.array([np.median(deviation[index == i]) for i in range(len(keys))])
    spreads = np.maximum(spreads, max(float(np.median(spreads)), float(np.finfo(np.float32).eps)))
    below = np.sort((values - medians[index]) / spreads[index])  # in spreads, lowest first
    budget = int(max_share * len(values))
    spread_count = max(deviations, -float(below[budget])) if budget < len(below) else deviations
    return {int(k): float(medians[i] - spread_count * spreads[i]) for i, k in enumerate(keys)}


def member_similarity(
    vectors: np.ndarray, labels: np.ndarray, centroids: Mapping[int, np.ndarray]
) -> np.ndarray:
    """Cosine of each unit to its own cluster's centroid; nan when unassigned."""
    similarity = np.full(len(vectors), np.nan, dtype=np.float32)
    for label, centroid in centroids.items():
        members = labels == label
        similarity[members] = vectors[members] @ centroid
    return similarity


def canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by size (largest is 0), ties by first unit, so labels do not depend
    on HDBSCAN's or the merge's internal numbering."""
    present, first, sizes = np.unique(labels[labels >= 0], return_index=True, return_counts=True)
    first = np.flatnonzero(labels >= 0)[first]
    order = sorted(range(len(present)), key=lambda i: (-sizes[i], first[i]))
    mapping = np.full(int(present.max()) + 1 if len(present) else 1, -1, dtype=np.int64)
    mapping[present[order]] = np.arange(len(present))
    return np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)
