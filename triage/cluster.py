"""Stage "cluster": unit vectors in, issues out, with ids that survive re-clustering.

Pure functions over numpy arrays; the database layer stores what they return.

The recipe, measured on Banking77 (``bench/cluster.py``: 77 narrow intents of ~40 short queries)
and on our feedback history (``bench/history.py``: 33 broad issues of ~100 tickets, each phrased
a dozen ways); one set of defaults has to do well on both:

1. Smooth: average each unit with its nearest units a few times. Paraphrases of one complaint
   pull together and stray wording is damped; this is the part of UMAP's neighbour graph that
   helps here, at a fraction of its cost (+0.03 ARI over plain PCA + HDBSCAN).
2. PCA to ``reduce_dims`` and renormalise: HDBSCAN's density estimates drown in 384 dimensions.
3. HDBSCAN with ``leaf`` selection and a ``min_cluster_size`` of 0.5% of the units (floor 5).
   Leaf finds the small dense groups; ``eom`` swallows several complaints into one. The size
   must exceed the group one phrasing of an issue forms, or each phrasing becomes its own
   cluster (at 0.15%, the history's 33 issues came out as 329 clusters).
4. Merge clusters whose centroids are nearly the same: leaf selection cuts one complaint into
   dense pieces, and one complaint must be one issue.
5. Attach each leftover unit to the nearest centroid. Every member, core or attached, must then
   clear ``assign_threshold`` on its own vector (smoothing drags a lone off-topic statement
   towards its neighbours); the rest stay unassigned (-1) rather than forced into an issue.

Above ``max_units`` units, steps 2-4 run on a fixed random sample, neighbours are looked up in
that sample, and step 5 places everyone else: HDBSCAN's cost grows much faster than linearly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from triage.config import Settings


def _setting(name: str) -> Any:
    # The dataclass defaults are the Settings defaults, so each knob has one home.
    return Settings.model_fields[f"cluster_{name}"].default


@dataclass(frozen=True)
class ClusterParams:
    reduce_dims: int = _setting("reduce_dims")
    min_cluster_size_share: float = _setting("min_cluster_size_share")
    min_cluster_size_floor: int = _setting("min_cluster_size_floor")
    min_cluster_size_ceiling: int = _setting("min_cluster_size_ceiling")
    min_samples: int = _setting("min_samples")
    selection_method: str = _setting("selection_method")
    smooth_neighbors: int = _setting("smooth_neighbors")
    smooth_steps: int = _setting("smooth_steps")
    merge_similarity: float = _setting("merge_similarity")
    assign_threshold: float = _setting("assign_threshold")
    max_units: int = _setting("max_units")
    random_state: int = _setting("random_state")
    blas_threads: int = _setting("blas_threads")

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterParams:
        return cls(**{f.name: getattr(settings, f"cluster_{f.name}") for f in fields(cls)})

    def min_cluster_size(self, n_units: int) -> int:
        size = round(self.min_cluster_size_share * n_units)
        return int(min(max(size, self.min_cluster_size_floor), self.min_cluster_size_ceiling))


@dataclass
class Clustering:
    labels: np.ndarray  # int, one per unit; -1 = unassigned
    centroids: dict[int, np.ndarray]  # label -> normalised mean of its members
    similarity: np.ndarray  # cosine of each unit to its centroid; nan when unassigned
    method: np.ndarray  # "cluster" (found by HDBSCAN), "assigned" (attached after) or ""

    @property
    def clusters(self) -> dict[int, np.ndarray]:
        """label -> indices of its units."""
        return {label: np.flatnonzero(self.labels == label) for label in self.centroids}

    @property
    def unassigned_share(self) -> float:
        return float(np.mean(self.labels < 0)) if len(self.labels) else 0.0


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
    vectors: np.ndarray, centroids: Mapping[int, np.ndarray], *, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid by cosine for each vector: (labels, similarities), with -1 and nan
    below ``threshold``. Ties go to the lowest label."""
    vectors = normalize(np.atleast_2d(vectors))
    n = len(vectors)
    if not centroids or n == 0:
        return np.full(n, -1, dtype=np.int64), np.full(n, np.nan, dtype=np.float32)
    keys = np.array(sorted(centroids), dtype=np.int64)
    scores = vectors @ normalize(np.stack([centroids[int(k)] for k in keys])).T
    best = scores.argmax(axis=1)  # the first maximum, i.e. the lowest label
    similarity = scores[np.arange(n), best]
    ok = similarity >= threshold
    return np.where(ok, keys[best], -1), np.where(ok, similarity, np.nan).astype(np.float32)


def nearest_neighbors(vectors: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` most cosine-similar rows of ``reference`` for each row of
    ``vectors``, unordered. Exact, in blocks to bound memory; hand-written because
    sklearn's brute-force kneighbors measured 2x slower here (it computes full distances)."""
    k = min(k, len(reference))
    blocks = []
    for start in range(0, len(vectors), 1024):
        scores = vectors[start : start + 1024] @ reference.T
        blocks.append(np.argpartition(scores, -k, axis=1)[:, -k:])
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


def _similarity(
    vectors: np.ndarray, labels: np.ndarray, centroids: Mapping[int, np.ndarray]
) -> np.ndarray:
    """Cosine of each unit to its own cluster's centroid; nan when unassigned."""
    similarity = np.full(len(vectors), np.nan, dtype=np.float32)
    for label, centroid in centroids.items():
        members = labels == label
        similarity[members] = vectors[members] @ centroid
    return similarity


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by size (largest is 0), ties by first unit, so labels do not depend
    on HDBSCAN's or the merge's internal numbering."""
    present, first, sizes = np.unique(labels[labels >= 0], return_index=True, return_counts=True)
    first = np.flatnonzero(labels >= 0)[first]
    order = sorted(range(len(present)), key=lambda i: (-sizes[i], first[i]))
    mapping = np.full(int(present.max()) + 1 if len(present) else 1, -1, dtype=np.int64)
    mapping[present[order]] = np.arange(len(present))
    return np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)


class Clusterer:
    """Smooth, PCA, HDBSCAN, merge, assign.

    Pass ``reducer`` (anything with ``fit_transform``) or ``hdbscan_model`` (anything with
    ``fit`` that sets ``labels_``) to swap a step; by default both are built per fit, because
    their sizes depend on the number of units.
    """

    def __init__(
        self,
        params: ClusterParams | None = None,
        *,
        reducer: Any = None,
        hdbscan_model: Any = None,
    ) -> None:
        self.params = params or ClusterParams()
        self.reducer = reducer
        self.hdbscan_model = hdbscan_model

    def fit(self, vectors: np.ndarray) -> Clustering:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.params.blas_threads):
            return self._fit(normalize(vectors))

    def _fit(self, vectors: np.ndarray) -> Clustering:
        p = self.params
        n = len(vectors)
        if n > p.max_units:
            rng = np.random.default_rng(p.random_state)
            sample = np.sort(rng.choice(n, size=p.max_units, replace=False))
        else:
            sample = np.arange(n)
        size = p.min_cluster_size(len(sample))

        labels = np.full(n, -1, dtype=np.int64)
        smoothed = vectors
        if len(sample) > size:
            smoothed = smooth(vectors, sample, neighbors=p.smooth_neighbors, steps=p.smooth_steps)
            model = self._hdbscan(size)
            model.fit(self._reduce(smoothed[sample]))
            labels[sample] = model.labels_
            labels = merge_close_clusters(smoothed, labels, min_similarity=p.merge_similarity)
        core = labels >= 0

        # Neighbours choose the issue a leftover unit is nearest to...
        leftover = ~core
        labels[leftover], _ = assign(
            smoothed[leftover], centroids_of(smoothed, labels), threshold=-1.0
        )
        # ...but smoothing also drags a lone off-topic statement towards its neighbours, so
        # every member must clear the threshold on its own vector against the centroid: the
        # same test ``assign`` applies to a new unit, which has no neighbours yet.
        own = _similarity(vectors, labels, centroids_of(vectors, labels))
        labels[~(own >= p.assign_threshold)] = -1
        labels = _canonical(labels)

        centroids = centroids_of(vectors, labels)
        similarity = _similarity(vectors, labels, centroids)
        method = np.where(labels < 0, "", np.where(core, "cluster", "assigned"))
        return Clustering(labels=labels, centroids=centroids, similarity=similarity, method=method)

    def _reduce(self, vectors: np.ndarray) -> np.ndarray:
        reducer = self.reducer
        if reducer is None:
            from sklearn.decomposition import PCA

            dims = min(self.params.reduce_dims, vectors.shape[1], len(vectors) - 1)
            reducer = PCA(n_components=dims, random_state=self.params.random_state)
        # HDBSCAN's trees want float64; renormalised, euclidean order is cosine order.
        return normalize(reducer.fit_transform(vectors)).astype(np.float64)

    def _hdbscan(self, min_cluster_size: int) -> Any:
        if self.hdbscan_model is not None:
            return self.hdbscan_model
        import hdbscan

        return hdbscan.HDBSCAN(
            min_cluster_size=min_cluster_size,
            min_samples=min(self.params.min_samples, min_cluster_size),
            cluster_selection_method=self.params.selection_method,
            # Prim's on a kd-tree measured 2-3x faster than the default Boruvka at 30 dims.
            algorithm="prims_kdtree",
        )


# --- stable identity ------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageEvent:
    """``split_from``: the new issue of ``cluster`` took units from ``issue_id``.
    ``merged_into``: ``issue_id`` is now part of ``into_issue_id``, which ``cluster`` carries."""

    kind: Literal["split_from", "merged_into"]
    cluster: int
    issue_id: int
    into_issue_id: int | None = None
    shared_units: int = 0


@dataclass
class IdentityMatch:
    issue_for_cluster: dict[int, int | None]  # None: a new issue
    lineage: list[LineageEvent] = field(default_factory=list)
    retired: set[int] = field(default_factory=set)  # old issues with no successor


def match_issues(
    previous: Mapping[int, set[int]],
    previous_centroids: Mapping[int, np.ndarray],
    clusters: Mapping[int, set[int]],
    cluster_centroids: Mapping[int, np.ndarray],
    *,
    min_overlap: float,
    min_similarity: float,
) -> IdentityMatch:
    """Carry issue ids over to a new clustering.

    A pair (old issue, new cluster) is linked when their shared units are at least
    ``min_overlap`` of the smaller side. Linked pairs are taken greedily, most shared units
    first, one issue per cluster; a linked pair whose cluster is already taken is a merge, one
    whose issue is already taken is a split. Clusters and issues still unmatched are paired by
    centroid cosine >= ``min_similarity`` (a cluster of only new units where an old issue was).
    Everything else is a new issue or a retired one: ids are never silently renumbered.
    """
    unit_issue = {unit: issue for issue, units in previous.items() for unit in units}
    shared: dict[tuple[int, int], int] = {}
    for label, units in clusters.items():
        for unit in units:
            issue = unit_issue.get(unit)
            if issue is not None:
                shared[issue, label] = shared.get((issue, label), 0) + 1

    def linked(issue: int, label: int) -> bool:
        smaller = min(len(previous[issue]), len(clusters[label]))
        return shared[issue, label] >= min_overlap * smaller

    def jaccard(issue: int, label: int) -> float:
        n = shared[issue, label]
        return n / (len(previous[issue]) + len(clusters[label]) - n)

    pairs = sorted(
        (pair for pair in shared if linked(*pair)),
        key=lambda pair: (-shared[pair], -jaccard(*pair), pair),
    )
    issue_for_cluster: dict[int, int | None] = {label: None for label in clusters}
    cluster_of_issue: dict[int, int] = {}
    for issue, label in pairs:
        if issue not in cluster_of_issue and issue_for_cluster[label] is None:
            issue_for_cluster[label] = issue
            cluster_of_issue[issue] = label

    lineage: list[LineageEvent] = []
    merged: set[int] = set()
    split_clusters: set[int] = set()
    for issue, label in pairs:  # most shared first, so each side records its strongest link
        survivor = issue_for_cluster[label]
        if survivor is None and label not in split_clusters and issue in cluster_of_issue:
            split_clusters.add(label)
            lineage.append(LineageEvent("split_from", label, issue, None, shared[issue, label]))
        elif survivor is not None and issue not in cluster_of_issue and issue not in merged:
            merged.add(issue)
            lineage.append(
                LineageEvent("merged_into", label, issue, survivor, shared[issue, label])
            )

    # Overlap says nothing about clusters made only of new units: fall back to position.
    free_issues = [
        issue
        for issue in sorted(previous)
        if issue not in cluster_of_issue and issue not in merged and issue in previous_centroids
    ]
    free_clusters = [
        label
        for label in sorted(clusters)
        if issue_for_cluster[label] is None
        and label not in split_clusters
        and label in cluster_centroids
    ]
    if free_issues and free_clusters:
        similarity = (
            normalize(np.stack([previous_centroids[i] for i in free_issues]))
            @ normalize(np.stack([cluster_centroids[c] for c in free_clusters])).T
        )
        candidates = sorted(
            (
                (-float(similarity[a, b]), issue, label)
                for a, issue in enumerate(free_issues)
                for b, label in enumerate(free_clusters)
                if similarity[a, b] >= min_similarity
            )
        )
        for _, issue, label in candidates:
            if issue not in cluster_of_issue and issue_for_cluster[label] is None:
                issue_for_cluster[label] = issue
                cluster_of_issue[issue] = label

    retired = {issue for issue in previous if issue not in cluster_of_issue and issue not in merged}
    return IdentityMatch(issue_for_cluster=issue_for_cluster, lineage=lineage, retired=retired)
