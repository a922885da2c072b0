"""Where the cluster stage meets the database: which issue each unit belongs to.

Between re-clusterings new units join the nearest receiving issue (``assign_new``); after a full
re-clustering, ``recluster_issues`` matches the new clusters to the existing issues so ids stay
stable, and records splits and merges as lineage. Manual memberships (a person's merge or move)
are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session

from triage import cluster, identity, store
from triage.config import Settings
from triage.embed import vector_from_bytes, vector_to_bytes
from triage.models import Issue, IssueStatus, utcnow
from triage.pipeline.units import UnitMatrix

# Issues in these states still take in new feedback; a resolved one that does is regressed.
RECEIVING = {
    IssueStatus.open,
    IssueStatus.acknowledged,
    IssueStatus.regressed,
    IssueStatus.resolved,
}

# unit id -> (issue id, method), as ``store.membership_map`` reads it.
Memberships = Mapping[int, tuple[int, str]]


@dataclass(frozen=True)
class MembershipParams:
    assign_threshold: float  # ... at this cosine to its centroid, for an issue without its own
    match_min_overlap: float  # old issue and new cluster are one when they share this much
    match_min_similarity: float  # ... or, sharing nothing, when their centroids are this close

    @classmethod
    def from_settings(cls, settings: Settings) -> MembershipParams:
        return cls(
            assign_threshold=settings.cluster_assign_threshold,
            match_min_overlap=settings.cluster_match_min_overlap,
            match_min_similarity=settings.cluster_match_min_similarity,
        )


def issue_of(memberships: Memberships) -> dict[int, int]:
    """unit id -> issue id."""
    return {unit_id: issue_id for unit_id, (issue_id, _) in memberships.items()}


def count_open(session: Session) -> int:
    """Issues that have units and have not been merged away."""
    return sum(1 for issue in store.active_issues(session) if issue.size > 0)


# --- between re-clusterings -----------------------------------------------------------------


def assign_new(
    session: Session, unit_ids: list[int], vectors: np.ndarray, *, threshold: float
) -> int:
    """Attach fresh units to the nearest receiving issue when similar enough (the issue's own
    calibrated threshold, ``threshold`` for an issue without one); returns how many."""
    receiving = store.issue_centroids(session, statuses=RECEIVING)
    if not unit_ids or not receiving:
        return 0
    centroids = {issue_id: vector_from_bytes(blob) for issue_id, (blob, _, _) in receiving.items()}
    needed = {
        issue_id: threshold if own is None else own for issue_id, (_, _, own) in receiving.items()
    }
    labels, similarity = cluster.assign(vectors, centroids, threshold=needed)
    rows = [
        {"unit_id": unit_id, "issue_id": int(label), "method": "assigned",
         "similarity": float(sim)}
        for unit_id, label, sim in zip(unit_ids, labels, similarity, strict=True)
        if label >= 0
    ]  # fmt: skip
    store.add_memberships(session, rows=rows)
    for issue_id in sorted({int(label) for label in labels if label >= 0}):
        if receiving[issue_id][1] == IssueStatus.resolved:
            reopen_if_resolved(session, store.get_issue(session, issue_id=issue_id))
    store.refresh_issue_sizes(session)
    return len(rows)


def reopen_if_resolved(session: Session, issue: Issue) -> None:
    # Like an error tracker: new feedback on a fixed issue means the fix did not hold.
    if issue.status == IssueStatus.resolved:
        issue.status = IssueStatus.regressed
        issue.lineage = [*issue.lineage, {"event": "regressed", "at": utcnow().isoformat()}]
        session.add(issue)


# --- full re-clustering ---------------------------------------------------------------------


def recluster_issues(
    session: Session,
    units: UnitMatrix,
    result: cluster.Clustering,
    memberships: Memberships,
    *,
    params: MembershipParams,
) -> list[dict]:
    """Match the clusters of ``result`` to the issues of ``memberships``, write the new
    memberships and record lineage; returns the lineage events."""
    manual = {unit_id for unit_id, (_, method) in memberships.items() if method == "manual"}
    previous: dict[int, set[int]] = {}
    for unit_id, (issue_id, _) in memberships.items():
        previous.setdefault(issue_id, set()).add(unit_id)
    issues = {i.id: i for i in store.active_issues(session) if i.id is not None}
    previous_centroids = {
        issue_id: vector_from_bytes(centroid)
        for issue_id in previous
        if issue_id in issues and (centroid := issues[issue_id].centroid)
    }
    clusters: dict[int, set[int]] = {}
    for unit_id, label in zip(units.ids, result.labels, strict=True):
        if label >= 0 and unit_id not in manual:
            clusters.setdefault(int(label), set()).add(unit_id)
    match = identity.match_issues(
        {k: v for k, v in previous.items() if k in issues},
        previous_centroids,
        clusters,
        {label: result.centroids[label] for label in clusters},
        min_overlap=params.match_min_overlap,
        min_similarity=params.match_min_similarity,
        # An issue holding statements a person put there is never retired.
        kept={issue_id for issue_id, method in memberships.values() if method == "manual"},
    )
    now = utcnow().isoformat()
    issue_for_label: dict[int, int] = {}
    for label in sorted(clusters):
        matched = match.issue_for_cluster.get(label)
        if matched is None:
            issue = Issue(lineage=[{"event": "created", "at": now}])
            session.add(issue)
            session.flush()  # for its id
            assert issue.id is not None
            matched = issue.id
            issues[matched] = issue
        issue_for_label[label] = matched
        issues[matched].centroid = vector_to_bytes(result.centroids[label])
        issues[matched].attach_threshold = result.thresholds.get(label)
    events = _record_lineage(issues, match, issue_for_label, now)

    row_of = {unit_id: row for row, unit_id in enumerate(units.ids)}
    rows = [
        {
            "unit_id": unit_id,
            "issue_id": issue_for_label[label],
            "method": str(result.method[row_of[unit_id]]),
            "similarity": float(result.similarity[row_of[unit_id]]),
        }
        for label, members in clusters.items()
        for unit_id in sorted(members)
    ]
    # Units placed by another worker after this refresh read its units keep their issue.
    late = sorted(unit_id for unit_id in memberships if unit_id not in row_of)
    store.set_memberships(session, rows=rows, keep=late)
    session.add_all(issues.values())
    store.refresh_issue_sizes(session)
    return events


def _record_lineage(
    issues: dict[int, Issue],
    match: identity.IdentityMatch,
    issue_for_label: dict[int, int],
    now: str,
) -> list[dict]:
    """Write each split, merge and retirement on both issues it concerns; returns the events."""
    events: list[dict] = []

    def record(issue_id: int, event: str, other: int | None, units: int) -> None:
        entry = {"event": event, "other_issue_id": other, "units": units, "at": now}
        issues[issue_id].lineage = [*issues[issue_id].lineage, entry]
        events.append({"issue_id": issue_id, **entry})

    for event in match.lineage:
        if event.kind == "split_from":
            new_id = issue_for_label[event.cluster]
            record(new_id, "split_from", event.issue_id, event.shared_units)
            record(event.issue_id, "split_into", new_id, event.shared_units)
        else:  # merged_into
            survivor = event.into_issue_id
            record(event.issue_id, "merged_into", survivor, event.shared_units)
            record(survivor, "merged_from", event.issue_id, event.shared_units)  # type: ignore[arg-type]
            issues[event.issue_id].merged_into = survivor
            issues[event.issue_id].status = IssueStatus.merged
    for issue_id in sorted(match.retired):
        record(issue_id, "retired", None, 0)
    return events
