"""What a unit is clustered on besides its words: its ticket's context and cause, and the
product feature of its ticket's linked outputs, joined side by side (``joined``); and the
result taken back to wording space (``in_wording_space``), where new units are placed. See the
package docstring for why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from triage.cluster.steps import Clustering, calibrated_thresholds, member_similarity
from triage.cluster.vectors import centroids_of, nearest_neighbors, normalize

if TYPE_CHECKING:
    from triage.cluster.clusterer import ClusterParams


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


def joined(
    plain: np.ndarray,
    params: ClusterParams,
    *,
    contexts: np.ndarray | None = None,
    causes: np.ndarray | None = None,
    facets: np.ndarray | None = None,
) -> np.ndarray | None:
    """``plain`` (unit-length wording) with each block that is given and weighed beside it, each
    block unit-length times its weight, renormalised; None when no block is: cluster on the
    words alone."""
    if facets is not None and params.feature_weight and facets.any():
        facets = impute_facets(plain, facets, neighbors=params.smooth_neighbors)
    else:
        facets = None
    blocks = [plain]
    weighted = (
        (contexts, params.context_weight),
        (causes, params.cause_weight),
        (facets, params.feature_weight),
    )
    for rows, weight in weighted:
        if rows is not None and weight:
            blocks.append(weight * normalize(rows))
    if len(blocks) == 1 or not len(plain):
        return None
    return normalize(np.hstack(blocks))


def in_wording_space(vectors: np.ndarray, result: Clustering, *, deviations: float) -> Clustering:
    """``result``'s issues with their centroids, similarities and thresholds computed on
    ``vectors`` alone. A new unit is placed on its words alone, so each issue's threshold is its
    members' median cosine there minus ``deviations`` robust spreads (``calibrated_thresholds``):
    a member that joined for its ticket, cause or feature (a greeting in a ticket about the
    issue) may sit below it, and does not open the issue to every new unit worded like it. No
    member leaves, so the share that may sit below is not capped."""
    centroids = centroids_of(vectors, result.labels)
    similarity = member_similarity(vectors, result.labels, centroids)
    thresholds = calibrated_thresholds(
        similarity, result.labels, deviations=deviations, max_share=1.0
    )
    return Clustering(result.labels, centroids, similarity, result.method, thresholds)
