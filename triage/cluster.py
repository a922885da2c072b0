"""Stage "cluster": unit vectors in, issues out (their stable ids: ``triage.identity``).

Pure functions over numpy arrays; the database layer stores what they return.

No parameter is a share of the data: each is a count of statements, a cosine or a number of
spreads, and means the same for 200 statements as for 100,000.

1. Centre and smooth. Vectors are centred on the data's own mean (the direction all of one
   product's feedback shares says nothing about which issue a statement is in), then each unit
   is averaged with its ``smooth_neighbors`` nearest units a few times: paraphrases of one
   complaint pull together and stray wording is damped, the part of UMAP's neighbour graph
   that helps here, at a fraction of its cost.
2. HDBSCAN, ``leaf`` selection, on PCA of the smoothed vectors: every dense group of at least
   ``min_issue_size`` units is a candidate issue. HDBSCAN looks at ``max_units`` units at most
   (a fixed random sample above that), and that fixes the granularity. Below ``max_units`` the
   smallest issue is ``min_issue_size`` statements; above it, HDBSCAN sees the same number of
   units whatever the total, so 3,000 and 100,000 statements of the same feedback give the same
   issues. A similarity threshold cannot do this on real data: the pieces one Banking77 intent
   splits into at a finer scale are no more alike than two neighbouring intents are (their
   centroid cosines and separations overlap), so merging cannot undo a finer look.
3. Merge candidates whose smoothed centroids have cosine >= ``merge_similarity``: leaf selection
   can cut one complaint into dense pieces.
4. Refine: every unit goes to its nearest centroid and the centroids are recomputed (k-means
   started from the candidates) for up to ``refine_steps`` rounds, so units outside the sample
   and outside HDBSCAN's dense cores shape the issues too. A group left with fewer than
   ``min_issue_size`` units is dissolved into its neighbours.
5. Calibrated attach. Smoothing drags a lone off-topic statement towards its neighbours, so
   every member is checked on its own vector against its issue's centroid, with a threshold its
   fellow members set: their median cosine minus ``attach_deviations`` robust spreads (1.4826 x
   the median absolute deviation, never narrower than the median issue's). A tight issue takes
   only close units and a broad one broader ones; a unit far below its nearest issue's members
   stays unassigned (-1). When more than ``attach_max_share`` of the units would stay out, the
   number of spreads grows until that share does: never more stay out once issues form. Each
   issue's threshold comes back with it, to place new units between re-clusterings.

Cause is part of how issues form. When the caller passes ``causes`` (one row per unit: its
ticket's category probabilities), each unit is clustered on its wording and its cause side by
side, the cause weighing ``cause_weight`` times the wording: for unit-length parts the joined
cosine is (cosine of wording + cause_weight² x cosine of causes) / (1 + cause_weight²). Two
complaints about one screen, one about a redraw bug (ui) and one about a stale feed (data), then
sit apart although their words are close. ``facets`` (``facet_rows``: the product features of the
model outputs each unit's ticket is linked to) join the same way at ``feature_weight``: two model
faults of one product, one in its test generator and one in its inline completions, share a cause
and much of their vocabulary, but not the feature their customers used. A unit whose ticket is
linked to no output borrows the features of its nearest linked units (``impute_facets``).
``contexts`` (one row per unit: its whole ticket's vector) join at ``context_weight``: each
statement is read in the context of its ticket, so "I'm the sales engineer" or "Could you take a
look" goes where the rest of its ticket goes, and a ticket's statements stay together unless
their words pull them apart. Centroids, similarities and thresholds come back in wording space,
where new units are placed between re-clusterings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from triage.config import Settings

# The robust spread: 1.4826 x the median absolute deviation is one standard deviation for
# normally distributed values, and a few far outliers cannot inflate it.
MAD_TO_SPREAD = 1.4826


def _setting(name: str) -> Any:
    # The dataclass defaults are the Settings defaults, so each knob has one home.
    return Settings.model_fields[f"cluster_{name}"].default


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
        return cls(**{f.name: getattr(settings, f"cluster_{f.name}") for f in fields(cls)})


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


def facet_rows(facets: Sequence[Sequence[str]]) -> np.ndarray | None:
    """One row per unit from the facets it has (its ticket's linked outputs' features, one
    entry per output): their counts, normalised; zeros for a unit with none, which
    ``Clusterer.fit`` reads as unknown. None when fewer than two facets occur: then they tell no
    unit from another."""
    names = sorted({name for own in facets for name in own})
    if len(names) < 2:
        return None
    column = {name: i for i, name in enumerate(names)}
    rows = np.zeros((len(facets), len(names)), dtype=np.float32)
    for i, own in enumerate(facets):
        for name in own:
            rows[i, column[name]] += 1.0
    return normalize(rows)


def impute_facets(vectors: np.ndarray, facets: np.ndarray, *, neighbors: int) -> np.ndarray:
    """``facets`` with each unknown (all-zero) row replaced by the mean of its ``neighbors``
    nearest known units' rows, nearest by ``vectors``: a statement whose ticket names no
    output is taken to be about the features of the statements worded like it. A constant
    row instead would set every unknown unit apart from the known ones, and they formed issues
    of their own."""
    known = facets.any(axis=1)
    if known.all() or not known.any():
        return facets
    near = nearest_neighbors(vectors[~known], vectors[known], neighbors)
    filled = facets.copy()
    filled[~known] = normalize(facets[known][near].mean(axis=1))
    return filled


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


def _similarity(
    vectors: np.ndarray, labels: np.ndarray, centroids: Mapping[int, np.ndarray]
) -> np.ndarray:
    """Cosine of each unit to its own cluster's centroid; nan when unassigned."""
    similarity = np.full(len(vectors), np.nan, dtype=np.float32)
    for label, centroid in centroids.items():
        members = labels == label
        similarity[members] = vectors[members] @ centroid
    return similarity


def in_wording_space(vectors: np.ndarray, result: Clustering, *, deviations: float) -> Clustering:
    """``result``'s issues with their centroids, similarities and thresholds computed on
    ``vectors`` alone. A new unit is placed on its words alone, so each issue's threshold is its
    members' median cosine there minus ``deviations`` robust spreads (``calibrated_thresholds``):
    a member that joined for its ticket, cause or feature (a greeting in a ticket about the
    issue) may sit below it, and does not open the issue to every new unit worded like it. No
    member leaves, so the share that may sit below is not capped."""
    centroids = centroids_of(vectors, result.labels)
    similarity = _similarity(vectors, result.labels, centroids)
    thresholds = calibrated_thresholds(
        similarity, result.labels, deviations=deviations, max_share=1.0
    )
    return Clustering(result.labels, centroids, similarity, result.method, thresholds)


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

        plain = normalize(vectors)
        blocks = [plain]
        p = self.params
        if facets is not None and p.feature_weight and facets.any():
            facets = impute_facets(plain, facets, neighbors=p.smooth_neighbors)
        else:
            facets = None
        weighted = (
            (contexts, p.context_weight),
            (causes, p.cause_weight),
            (facets, p.feature_weight),
        )
        for rows, weight in weighted:
            if rows is not None and weight:
                blocks.append(weight * normalize(rows))
        with threadpool_limits(limits=self.params.blas_threads):
            if len(blocks) == 1 or not len(plain):
                return self._fit(plain)
            joined = self._fit(normalize(np.hstack(blocks)))
            return in_wording_space(plain, joined, deviations=p.attach_deviations)

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
        own = _similarity(vectors, labels, centroids_of(vectors, labels))
        cutoff = calibrated_thresholds(
            own, labels, deviations=p.attach_deviations, max_share=p.attach_max_share
        )
        for label, threshold in cutoff.items():
            labels[(labels == label) & ~(own >= threshold)] = -1
        canonical = _canonical(labels)

        centroids = centroids_of(vectors, canonical)
        similarity = _similarity(vectors, canonical, centroids)
        # The threshold every member clears, also against the centroid without the outliers.
        thresholds = {
            label: min(cutoff[int(labels[members[0]])], float(similarity[members].min()))
            for label, members in ((k, np.flatnonzero(canonical == k)) for k in centroids)
        }
        method = np.where(canonical < 0, "", np.where(found, "cluster", "assigned"))
        return Clustering(canonical, centroids, similarity, method, thresholds)

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
