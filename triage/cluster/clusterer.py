"""``Clusterer``: centre, smooth, PCA, HDBSCAN, merge, refine, attach (the package docstring
says why each), with the knobs of ``ClusterParams``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from triage.cluster.blocks import in_wording_space, joined
from triage.cluster.steps import (
    Clustering,
    calibrated_thresholds,
    canonical,
    member_similarity,
    merge_close_clusters,
    refine,
)
from triage.cluster.vectors import centroids_of, normalize, smooth
from triage.config import Settings, defaults_of, params_from

_setting = defaults_of("cluster")


@dataclass(frozen=True)
class ClusterParams:
    reduce_dims: int = _setting("reduce_dims")
    min_issue_size: int = _setting("min_issue_size")
    min_samples: int = _setting("min_samples")
    selection_method: str = _setting("selection_method")
    smooth_neighbors: int = _setting("smooth_neighbors")
    smooth_steps: int = _setting("smooth_steps")
    merge_similarity: float = _setting("merge_similarity")
    refine_steps: int = _setting("refine_steps")
    attach_deviations: float = _setting("attach_deviations")
    attach_max_share: float = _setting("attach_max_share")
    max_units: int = _setting("max_units")
    neighbor_units: int = _setting("neighbor_units")
    random_state: int = _setting("random_state")
    blas_threads: int = _setting("blas_threads")
    cause_weight: float = _setting("cause_weight")
    feature_weight: float = _setting("feature_weight")
    context_weight: float = _setting("context_weight")

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterParams:
        return params_from(cls, settings, "cluster")


class Clusterer:
    """Centre, smooth, PCA, HDBSCAN, merge, refine, attach.

    Pass ``reducer`` (anything with ``fit_transform``) or ``hdbscan_model`` (anything with
    ``fit`` that sets ``labels_``) to swap a step; by default both are built per fit.
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

    def fit(
        self,
        vectors: np.ndarray,
        *,
        causes: np.ndarray | None = None,
        facets: np.ndarray | None = None,
        contexts: np.ndarray | None = None,
    ) -> Clustering:
        """Cluster ``vectors``; with ``causes`` (a row per unit, e.g. category probabilities),
        ``facets`` (a row per unit, ``facet_rows``) and ``contexts`` (a row per unit, its
        ticket's vector) on all of them together, see the module docstring."""
        from threadpoolctl import threadpool_limits

        p = self.params
        plain = normalize(vectors)
        together = joined(plain, p, contexts=contexts, causes=causes, facets=facets)
        with threadpool_limits(limits=p.blas_threads):
            if together is None:
                return self._fit(plain)
            return in_wording_space(plain, self._fit(together), deviations=p.attach_deviations)

    def _fit(self, vectors: np.ndarray) -> Clustering:
        p = self.params
        n = len(vectors)
        # One permutation, so HDBSCAN's sample is part of the neighbours' reference sample.
        order = np.random.default_rng(p.random_state).permutation(n)
        sample = np.sort(order[: p.max_units])
        reference = np.sort(order[: max(p.max_units, p.neighbor_units)])

        labels = np.full(n, -1, dtype=np.int64)
        found = np.zeros(n, dtype=bool)  # in a group HDBSCAN found, before merge and refine
        if len(sample) > p.min_issue_size:
            centred = normalize(vectors - vectors[reference].mean(axis=0))
            smoothed = smooth(
                centred, reference, neighbors=p.smooth_neighbors, steps=p.smooth_steps
            )
            model = self._hdbscan()
            model.fit(self._reduce(smoothed[sample]))
            labels[sample] = model.labels_
            found = labels >= 0
            labels = merge_close_clusters(smoothed, labels, min_similarity=p.merge_similarity)
            if found.any():
                labels = refine(smoothed, labels, steps=p.refine_steps, min_size=p.min_issue_size)

        # Every member is checked on its own vector, the test ``assign`` applies to a new unit,
        # which has no neighbours yet.
        own = member_similarity(vectors, labels, centroids_of(vectors, labels))
        cutoff = calibrated_thresholds(
            own, labels, deviations=p.attach_deviations, max_share=p.attach_max_share
        )
        for label, threshold in cutoff.items():
            labels[(labels == label) & ~(own >= threshold)] = -1
        ordered = canonical(labels)

        centroids = centroids_of(vectors, ordered)
        similarity = member_similarity(vectors, ordered, centroids)
        # The threshold every member clears, also against the centroid without the outliers.
        thresholds = {
            label: min(cutoff[int(labels[members[0]])], float(similarity[members].min()))
            for label, members in ((k, np.flatnonzero(ordered == k)) for k in centroids)
        }
        method = np.where(ordered < 0, "", np.where(found, "cluster", "assigned"))
        return Clustering(ordered, centroids, similarity, method, thresholds)

    def _reduce(self, vectors: np.ndarray) -> np.ndarray:
        reducer = self.reducer
        if reducer is None:
            from sklearn.decomposition import PCA

            dims = min(self.params.reduce_dims, vectors.shape[1], len(vectors) - 1)
            reducer = PCA(n_components=dims, random_state=self.params.random_state)
        # HDBSCAN's trees want float64; renormalised, euclidean order is cosine order.
        return normalize(reducer.fit_transform(vectors)).astype(np.float64)

    def _hdbscan(self) -> Any:
        if self.hdbscan_model is not None:
            return self.hdbscan_model
        import hdbscan

        size = self.params.min_issue_size
        return hdbscan.HDBSCAN(
            min_cluster_size=size,
            min_samples=min(self.params.min_samples, size),
            cluster_selection_method=self.params.selection_method,
            # Prim's on a kd-tree measured 2-3x faster than the default Boruvka at 30 dims.
            algorithm="prims_kdtree",
        )
