"""Stable identity: carry issue ids over from one clustering to the next, with lineage.

Pure functions over unit-id sets and centroids; ``triage.pipeline.memberships`` stores what they
return. Split from ``triage.cluster`` because it answers a different question (which old issue
is this new cluster?) than how clusters form.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from triage.cluster import normalize


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
    kept: Collection[int] = (),
) -> IdentityMatch:
    """Carry issue ids over to a new clustering.

    A pair (old issue, new cluster) is linked when their shared units are at least
    ``min_overlap`` of the smaller side. Linked pairs are taken greedily, most shared units
    first, one issue per cluster; a linked pair whose cluster is already taken is a merge, one
    whose issue is already taken is a split. Clusters and issues still unmatched are paired by
    centroid cosine >= ``min_similarity`` (a cluster of only new units where an old issue was).
    Everything else is a new issue or a retired one: ids are never silently renumbered. An
    issue in ``kept`` keeps members whatever the clustering (a person put them there), so it is
    never retired.
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

    retired = {
        issue
        for issue in previous
        if issue not in cluster_of_issue and issue not in merged and issue not in kept
    }
    return IdentityMatch(issue_for_cluster=issue_for_cluster, lineage=lineage, retired=retired)
